//! The agent's TCP socket with `TCP_QUICKACK` re-armed after every read.
//!
//! Why: the OpenSSH client does not set `TCP_NODELAY` for a non-interactive session, so when
//! it has two small packets to send back to back, Nagle holds the second until the first is
//! acknowledged — and Linux delays that acknowledgement up to 40 ms when the gateway has
//! nothing to send at that moment. `TCP_NODELAY` on our side cannot help (it is the client's
//! send that waits); acknowledging at once can. Linux clears quick-ACK mode by itself
//! (`TCP_QUICKACK` is not sticky), so it is set again after each read that returned data:
//! setting it also sends an acknowledgement that was being delayed. The cost is one
//! `setsockopt` per read and a few more bare ACKs; nothing about what is sent changes.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub struct QuickAck {
    inner: TcpStream,
    fd: RawFd,
}

impl QuickAck {
    pub fn new(inner: TcpStream) -> Self {
        let fd = inner.as_raw_fd();
        let me = Self { inner, fd };
        me.arm();
        me
    }

    fn arm(&self) {
        let on: libc::c_int = 1;
        // SAFETY: `fd` is the socket `inner` owns for as long as `self` lives; the option value
        // is a c_int on the stack with its size passed alongside.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // Only a timing optimisation: a failure changes nothing else.
        if rc != 0 {
            tracing::trace!(error = %io::Error::last_os_error(), "TCP_QUICKACK not set");
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut me.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            me.arm();
        }
        res
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_pass_both_ways_unchanged() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            c.read_exact(&mut got).await.unwrap();
            got
        });
        let (s, _) = l.accept().await.unwrap();
        let mut s = QuickAck::new(s);
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        s.write_all(b"pong").await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(&client.await.unwrap(), b"pong");
    }
}
