//! Helpers for the access-request tests: `request-access` on the control target as the agent,
//! and the reviewer's view of an access request.

use super::*;

impl Gateway {
    /// Start `request-access ARGS` as the agent (the control target `airlock`).
    pub fn spawn_access(&self, args: &str) -> tokio::process::Child {
        self.spawn_on("airlock", &format!("request-access {args}"))
    }

    /// `request-access ARGS` to its end: (exit code, stdout, stderr).
    pub async fn request_access(&self, args: &str) -> (i32, String, String) {
        finish(self.spawn_access(args)).await
    }
}

impl Reviewer {
    /// The next access request pushed to this reviewer (commands are skipped), bounded.
    pub async fn access_request(&mut self) -> Value {
        for _ in 0..100 {
            let m = self.next_of("request").await;
            if m["kind"] == "access" {
                return m;
            }
        }
        panic!("no access request");
    }
}
