//! Host processes for the local runtime: start detached, check, signal, measure.
//!
//! Processes are started in their own process group so that a Ctrl-C in the terminal
//! that ran `socialctl up` does not reach them; `socialctl down` stops them by pid.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Starts `cmd` detached, output appended to `log`; returns its pid.
pub fn spawn_detached(mut cmd: Command, log: &Path) -> anyhow::Result<u32> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("could not open log file {}", log.display()))?;
    let err = out
        .try_clone()
        .context("could not duplicate the log file handle")?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    Ok(child.id())
}

/// A process's or thread's `stat` file after its parenthesised command name (which may
/// hold spaces): the state (field 3) first, then the parent's pid, and so on.
fn stat_rest(stat_path: &str) -> Option<String> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.to_owned())
}

/// The state letter of a process or thread from its `stat` file (`R`, `S`, `Z`, …).
fn state(stat_path: &str) -> Option<String> {
    stat_rest(stat_path)?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// Whether `pid` names a live process: not gone, and not a zombie whose threads have all
/// exited. The main thread of a multi-threaded program can be a zombie while its other
/// threads are still exiting and still hold its files (a listening socket among them):
/// that process is not gone yet, and its port is not free.
pub fn alive(pid: u32) -> bool {
    match state(&format!("/proc/{pid}/stat")).as_deref() {
        None | Some("X") => false,
        Some("Z") => std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                let path = format!("/proc/{pid}/task/{}/stat", t.file_name().to_string_lossy());
                !matches!(state(&path).as_deref(), None | Some("Z" | "X"))
            }),
        Some(_) => true,
    }
}

/// Sends a signal by name (`TERM`, `QUIT`, `KILL`, `STOP`, `CONT`) with the system's
/// `kill`, to the process or, with `group`, to its whole process group (every process
/// socialctl starts leads its own group).
pub fn signal(pid: u32, sig: &str, group: bool) -> anyhow::Result<()> {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let status = Command::new("kill")
        .args([format!("-{sig}"), "--".into(), target])
        .stderr(Stdio::null())
        .status()
        .context("could not run `kill`")?;
    if !status.success() && alive(pid) {
        bail!("could not send SIG{sig} to process {pid}");
    }
    Ok(())
}

/// When a process started, in clock ticks since boot (field 22 of its stat): with the
/// pid, it names one process for good, even after the pid is reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let rest = stat_rest(&format!("/proc/{pid}/stat"))?;
    // Field 22 is the 20th after the state field (field 3).
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Asks a process to stop, waits up to `grace`, then kills it.
pub fn stop(pid: u32, sig: &str, grace: Duration) -> anyhow::Result<()> {
    if !alive(pid) {
        return Ok(());
    }
    signal(pid, sig, false)?;
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, "KILL", true)?;
        // Killed is not yet gone: a large process takes a moment to exit, and holds its
        // ports until it has.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Resident memory of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmRSS:")
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A process and all its descendants (PostgreSQL's backends, a wrapper's child), from
/// /proc.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // The parent's pid follows the state.
            let ppid = stat_rest(&format!("/proc/{p}/stat"))
                .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// A process's proportional set size in bytes (shared pages, such as PostgreSQL's
/// shared buffers, split among the processes that map them), or its resident size
/// where the kernel gives no PSS.
fn pss_bytes(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| kib_field(&t, "Pss:"))
        .or_else(|| rss_bytes(pid))
}

/// The memory in bytes (as a container's would be counted without its page cache: the
/// sum of PSS) and the CPU seconds (user + system) of a process and its descendants,
/// from one walk of /proc. None when `pid` is gone.
pub fn tree_usage(pid: u32) -> Option<(u64, f64)> {
    let own = (pss_bytes(pid)?, cpu_seconds(pid)?);
    let children = tree(pid).into_iter().skip(1);
    Some(children.fold(own, |(mem, cpu), p| {
        (
            mem + pss_bytes(p).unwrap_or(0),
            cpu + cpu_seconds(p).unwrap_or(0.0),
        )
    }))
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let rest = stat_rest(&format!("/proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the state field.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Finds a program: next to socialctl first (a cargo build puts them together), then
/// on PATH, then in the given extra directories.
pub fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(path_dirs.into_iter().map(|d| d.join(name)))
        .chain(extra_dirs.iter().map(|d| Path::new(d).join(name)))
        .find(|p| p.is_file())
}

/// Last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Prints the last `tail` lines of a log file, then (with `follow`) what is appended,
/// until Ctrl-C.
pub async fn print_log(path: &Path, follow: bool, tail_lines: usize) -> anyhow::Result<()> {
    print!("{}", tail(path, tail_lines));
    println!();
    if !follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(path)?.len();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let len = std::fs::metadata(path)?.len();
        if len > offset {
            use std::io::{Read, Seek, SeekFrom, Write};
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            std::io::stdout().write_all(&buf)?;
            offset = len;
        } else if len < offset {
            offset = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_whose_main_thread_exited_is_alive_while_another_thread_runs() {
        // The main thread ends (pthread_exit) while a second thread still runs, as a
        // multi-threaded server's does while it shuts down: the process still holds its
        // files, so it is not gone; once the last thread ends, it is.
        let script = "import ctypes, threading, time\n\
                      threading.Thread(target=lambda: time.sleep(1.5)).start()\n\
                      ctypes.CDLL(None).pthread_exit(None)\n";
        let mut py = std::process::Command::new("python3")
            .args(["-c", script])
            .spawn()
            .expect("python3 runs");
        let pid = py.id();
        let leader = format!("/proc/{pid}/stat");
        let deadline = Instant::now() + Duration::from_secs(10);
        while state(&leader).as_deref() != Some("Z") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            state(&leader).as_deref(),
            Some("Z"),
            "the main thread has exited"
        );
        assert!(alive(pid), "its other thread still runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "gone once its last thread ends");
        let _ = py.wait();
    }

    #[test]
    fn a_process_tree_counts_its_childrens_memory() {
        // A shell whose child holds 64 MiB of its own (PostgreSQL's backends are such
        // children): the tree's memory must count it, the shell's own RSS does not.
        let mut sh = std::process::Command::new("sh")
            .args([
                "-c",
                "python3 -c 'import time; b = bytearray(64 << 20); time.sleep(60)' & wait",
            ])
            .spawn()
            .expect("sh runs");
        let pid = sh.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while Instant::now() < deadline {
            seen = tree_usage(pid).map_or(0, |(mem, _)| mem);
            if tree(pid).len() >= 2 && seen > 64 << 20 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let own = rss_bytes(pid).unwrap_or(0);
        for p in tree(pid).into_iter().rev() {
            let _ = signal(p, "KILL", false);
        }
        let _ = sh.wait();
        assert!(own < 32 << 20, "the shell alone is small: {own}");
        assert!(seen > 64 << 20, "the tree holds the child's 64 MiB: {seen}");
    }
}
