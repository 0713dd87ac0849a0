//! `socialnet SERVICE [FLAGS]`: every service in one binary, as Jaeger's HotROD ships
//! its services. One link instead of one per service keeps a cold build short, and the
//! images carry one file. Each service stays its own crate; this is only the dispatch.

use std::ffi::OsString;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: every request allocates a little on many threads
/// (its spans most of all), where glibc's arenas contend; mimalloc's per-thread heaps do
/// not, and it returns what argon2's 19 MiB blocks held once they are freed.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The services, by the name the component table starts them with.
const SERVICES: &[&str] = &[
    "auth",
    "profile",
    "feed",
    "messaging",
    "media",
    "objects",
    "chaosproxy",
    "web",
];

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(name) = argv.first().and_then(|n| n.to_str()).map(str::to_owned) else {
        eprintln!(
            "usage: socialnet SERVICE [FLAGS]; services: {}",
            SERVICES.join(", ")
        );
        return ExitCode::from(2);
    };
    // The service parses `argv` as its own command line: its name first.
    argv[0] = OsString::from(&name);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("socialnet: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        match name.as_str() {
            "auth" => auth::main(argv).await,
            "profile" => profile::main(argv).await,
            "feed" => feed::main(argv).await,
            "messaging" => messaging::main(argv).await,
            "media" => media::main(argv).await,
            "objects" => objects::main(argv).await,
            "chaosproxy" => chaosproxy::main(argv).await,
            "web" => web::main(argv).await,
            other => {
                eprintln!(
                    "socialnet: no service named {other:?}; services: {}",
                    SERVICES.join(", ")
                );
                ExitCode::from(2)
            }
        }
    })
}
