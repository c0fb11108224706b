//! The `ktxh` binary; its command line lives in `ktxh::cli`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ktxh::cli::main().await
}
