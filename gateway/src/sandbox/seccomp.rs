//! Read-only mode, for what Landlock does not cover: a seccomp filter refuses sockets and
//! metadata changes.
//!
//! A command nobody reviewed must not change anything, and a socket is a way to change things
//! elsewhere: `curl dict://127.0.0.1:6379/SET…` writes to Redis, `psql` over the local socket
//! runs `lo_export`, `curl --unix-socket /var/run/docker.sock` starts a root container.
//! Landlock (ABI 7) cannot stop UNIX-socket connections by path, so in read-only mode
//! `socket()` fails with EACCES for every family but netlink (`ip addr`, `ss` read the
//! kernel's tables that way), and `io_uring_setup` fails too (io_uring can make sockets without
//! the `socket` system call). `socketpair()` stays: it connects nothing outside the command.
//!
//! Landlock does not cover a file's metadata either: the owner of a file may `chmod`, `chown`
//! (to itself), `touch -d` or set extended attributes on it whatever Landlock says. Those system
//! calls fail with EACCES too — also where no read-only mount namespace can be made (inside
//! an already sandboxed shell).
//!
//! System V IPC, POSIX message queues and kernel keyrings outlive the command and are shared
//! by the whole host: creating or using them is refused as well.
//!
//! The filter knows x86_64 and aarch64; a 32-bit or x32 system call from such a process is
//! refused outright, so the old `socketcall` path cannot go around it.

#[derive(Debug, thiserror::Error)]
#[error("cannot install the read-only system call filter: {0}")]
pub struct SeccompError(std::io::Error);

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AF_NETLINK: u32 = 16;

/// x86_64: `socket`, then the calls refused outright.
const X86_64_SOCKET: u32 = 41;
const X86_64_DENY: &[u32] = &[
    425, // io_uring_setup
    90, 91, 268, 452, // chmod fchmod fchmodat fchmodat2
    92, 93, 94, 260, // chown fchown lchown fchownat
    132, 235, 261, 280, // utime utimes futimesat utimensat
    188, 189, 190, 463, // setxattr lsetxattr fsetxattr setxattrat
    197, 198, 199, 466, // removexattr lremovexattr fremovexattr removexattrat
    29, 30, 31, // shmget shmat shmctl
    64, 65, 66, 220, // semget semop semctl semtimedop
    68, 69, 70, 71, // msgget msgsnd msgrcv msgctl
    240, 242, // mq_open mq_timedsend
    248, 249, 250, // add_key request_key keyctl
];
/// aarch64 (no legacy chmod/chown/utime calls there).
const AARCH64_SOCKET: u32 = 198;
const AARCH64_DENY: &[u32] = &[
    425, // io_uring_setup
    52, 53, 452, // fchmod fchmodat fchmodat2
    54, 55, // fchownat fchown
    88, // utimensat
    5, 6, 7, 463, // setxattr lsetxattr fsetxattr setxattrat
    14, 15, 16, 466, // removexattr lremovexattr fremovexattr removexattrat
    180, 182, // mq_open mq_timedsend
    186, 187, 188, 189, // msgget msgctl msgrcv msgsnd
    190, 191, 192, 193, // semget semctl semtimedop semop
    194, 195, 196, // shmget shmctl shmat
    217, 218, 219, // add_key request_key keyctl
];

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0: u32 = 16;

/// Where a conditional jump goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum To {
    Next,
    X86,
    Arm,
    Socket,
    Deny,
}

/// One instruction before jumps are resolved.
enum Op {
    Load(u32),
    Jeq(u32, To, To),
    Jge(u32, To, To),
    Ret(u32),
    /// Marks where a label starts (emits nothing).
    Label(To),
}

fn ops() -> Vec<Op> {
    let deny = RET_ERRNO | libc::EACCES as u32;
    let mut v = vec![
        Op::Load(ARCH),
        Op::Jeq(AUDIT_ARCH_X86_64, To::X86, To::Next),
        Op::Jeq(AUDIT_ARCH_AARCH64, To::Arm, To::Next),
        Op::Ret(RET_ERRNO | libc::ENOSYS as u32), // another architecture
        Op::Label(To::X86),
        Op::Load(NR),
        Op::Jge(X32_SYSCALL_BIT, To::Deny, To::Next),
        Op::Jeq(X86_64_SOCKET, To::Socket, To::Next),
    ];
    v.extend(X86_64_DENY.iter().map(|&n| Op::Jeq(n, To::Deny, To::Next)));
    v.push(Op::Ret(RET_ALLOW));
    v.push(Op::Label(To::Arm));
    v.push(Op::Load(NR));
    v.push(Op::Jeq(AARCH64_SOCKET, To::Socket, To::Next));
    v.extend(AARCH64_DENY.iter().map(|&n| Op::Jeq(n, To::Deny, To::Next)));
    v.push(Op::Ret(RET_ALLOW));
    // socket(domain, …): only netlink.
    v.push(Op::Label(To::Socket));
    v.push(Op::Load(ARG0));
    v.push(Op::Jeq(AF_NETLINK, To::Next, To::Deny));
    v.push(Op::Ret(RET_ALLOW));
    v.push(Op::Label(To::Deny));
    v.push(Op::Ret(deny));
    v
}

/// Resolve labels into relative jumps.
fn program() -> Vec<libc::sock_filter> {
    let ops = ops();
    let mut at = std::collections::HashMap::new();
    let mut n = 0usize;
    for op in &ops {
        match op {
            Op::Label(l) => {
                at.insert(*l as u8, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    for op in &ops {
        let here = out.len();
        let rel = |t: To| -> u8 {
            match t {
                To::Next => 0,
                l => {
                    let target = at.get(&(l as u8)).copied().unwrap_or(here + 1);
                    u8::try_from(target - here - 1).unwrap_or(u8::MAX)
                }
            }
        };
        let (code, k, jt, jf) = match op {
            Op::Label(_) => continue,
            Op::Load(off) => (LD_W_ABS, *off, 0, 0),
            Op::Jeq(v, t, f) => (JEQ_K, *v, rel(*t), rel(*f)),
            Op::Jge(v, t, f) => (JGE_K, *v, rel(*t), rel(*f)),
            Op::Ret(r) => (RET_K, *r, 0, 0),
        };
        out.push(libc::sock_filter { code, jt, jf, k });
    }
    out
}

/// Install the filter on this process (and what it execs). Needs `no_new_privs` (or
/// CAP_SYS_ADMIN), which the sandbox sets first.
pub fn deny_sockets() -> Result<(), SeccompError> {
    let prog = program();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the program outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if rc < 0 {
        return Err(SeccompError(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program the way the kernel would, for one system call.
    fn verdict(arch: u32, nr: u32, arg0: u32) -> u32 {
        let p = program();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &p[pc];
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0 => arg0,
                        other => panic!("load of offset {other}"),
                    };
                    pc += 1;
                }
                JEQ_K | JGE_K => {
                    let hit = if i.code == JEQ_K {
                        acc == i.k
                    } else {
                        acc >= i.k
                    };
                    pc += 1 + usize::from(if hit { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    const DENY: u32 = RET_ERRNO | libc::EACCES as u32;

    #[test]
    fn sockets_and_metadata_changes_are_refused_and_the_rest_allowed() {
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(verdict(x, X86_64_SOCKET, 2), DENY, "AF_INET");
        assert_eq!(verdict(x, X86_64_SOCKET, 1), DENY, "AF_UNIX");
        assert_eq!(verdict(x, X86_64_SOCKET, 10), DENY, "AF_INET6");
        assert_eq!(verdict(x, X86_64_SOCKET, AF_NETLINK), RET_ALLOW);
        for &n in X86_64_DENY {
            assert_eq!(verdict(x, n, 0), DENY, "x86_64 syscall {n}");
        }
        for n in [0, 1, 2, 59, 53 /* socketpair */, 257 /* openat */] {
            assert_eq!(verdict(x, n, 1), RET_ALLOW, "x86_64 syscall {n}");
        }
        assert_eq!(verdict(x, X32_SYSCALL_BIT | 90, 0), DENY, "x32");
        let a = AUDIT_ARCH_AARCH64;
        assert_eq!(verdict(a, AARCH64_SOCKET, 2), DENY);
        assert_eq!(verdict(a, AARCH64_SOCKET, AF_NETLINK), RET_ALLOW);
        for &n in AARCH64_DENY {
            assert_eq!(verdict(a, n, 0), DENY, "aarch64 syscall {n}");
        }
        assert_eq!(verdict(a, 56 /* openat */, 0), RET_ALLOW);
        assert_ne!(verdict(0x4000_0003 /* i386 */, 1, 0), RET_ALLOW);
    }
}
