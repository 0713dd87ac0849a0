//! The Docker plan: each instance's launch recipe translated into one container (image,
//! command, environment, published ports, volume, labels). The runtime creates these;
//! the Compose renderer writes the same plan as YAML.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RUN_DIR;
use crate::stack::recipe::{Exec, Paths};
use crate::stack::{Instance, Net, Stack};

/// One container the stack wants: an instance's recipe translated for Docker.
#[derive(Debug, Clone, Serialize)]
pub struct Want {
    pub instance: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// (host port on 127.0.0.1, container port)
    pub publish: Vec<(u16, u16)>,
    /// (volume name, path in the container)
    pub volume: Option<(String, String)>,
    pub probe: String,
    pub port: u16,
    pub stop_signal: String,
    pub depends_on: Vec<String>,
    pub service: bool,
}

impl Want {
    pub fn spec_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a container spec serialises");
        let mut h: u64 = 0xcbf29ce484222325;
        for b in json {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}

/// Quotes a word for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A recipe's command line for a container: files the program reads are carried in
/// environment variables and written by a small `sh` prologue (the same container
/// definition then works for `docker compose`, which cannot copy files in).
fn command_of(exec: &Exec, env: &mut BTreeMap<String, String>) -> Vec<String> {
    let Some(program) = &exec.program else {
        return exec.args.clone();
    };
    if exec.files.is_empty() {
        return std::iter::once(program.clone())
            .chain(exec.args.iter().cloned())
            .collect();
    }
    let mut script = format!("mkdir -p {RUN_DIR}");
    for (i, (name, content)) in exec.files.iter().enumerate() {
        let var = format!("SOCIALNET_FILE_{i}");
        script.push_str(&format!(
            " && printf '%s' \"${var}\" > {RUN_DIR}/{}",
            sh_quote(name)
        ));
        env.insert(var, content.clone());
    }
    script.push_str(" && exec ");
    script.push_str(
        &std::iter::once(program.as_str())
            .chain(exec.args.iter().map(String::as_str))
            .map(sh_quote)
            .collect::<Vec<_>>()
            .join(" "),
    );
    vec!["sh".into(), "-c".into(), script]
}

/// The containers of `stack` for project `project`, made from `image`.
pub fn wants(stack: &Stack, image: &str, project: &str) -> Vec<Want> {
    stack
        .instances()
        .iter()
        .map(|inst| want(stack, inst, image, project))
        .collect()
}

fn want(stack: &Stack, inst: &Instance, image: &str, project: &str) -> Want {
    let c = &inst.component;
    let paths = Paths {
        run: RUN_DIR.into(),
        data: c.data.map(|(_, path)| path.to_owned()),
    };
    let exec = stack.exec(Net::Docker, inst, &paths);
    let mut env = exec.env.clone();
    let cmd = command_of(&exec, &mut env);
    let publish = if c.publish {
        (0..c.ports.len())
            .map(|i| (stack.host_port(c, i, inst.replica), c.ports[i].inner))
            .collect()
    } else {
        Vec::new()
    };
    Want {
        instance: inst.name.clone(),
        image: exec.image.clone().unwrap_or_else(|| image.to_owned()),
        cmd,
        env,
        publish,
        volume: exec
            .data
            .as_ref()
            .zip(c.data)
            .map(|(name, (_, path))| (format!("{project}-{name}"), path.to_owned())),
        probe: c.probe.encode(),
        port: c.ports[0].inner,
        stop_signal: format!("SIG{}", c.stop_signal.name()),
        depends_on: stack
            .depends_on(c)
            .iter()
            .map(|d| (*d).to_owned())
            .collect(),
        service: exec.exports_spans(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::StackConfig;

    #[test]
    fn files_travel_in_the_environment_and_are_written_before_the_program_starts() {
        let s = Stack::new(StackConfig::default());
        let ws = wants(&s, "img", "p");
        let gw = ws
            .iter()
            .find(|w| w.instance == "gateway")
            .expect("gateway");
        assert_eq!(gw.cmd[..2], ["sh", "-c"]);
        assert!(
            gw.cmd[2].contains("> /tmp/socialnet/'nginx.conf'")
                && gw.cmd[2].ends_with("exec 'nginx' '-p' '/tmp/socialnet' '-c' '/tmp/socialnet/nginx.conf' '-g' 'daemon off;'"),
            "{}",
            gw.cmd[2]
        );
        assert!(gw.env["SOCIALNET_FILE_0"].contains("upstream socialnet_feed"));
        let pg = ws
            .iter()
            .find(|w| w.instance == "postgres")
            .expect("postgres");
        assert_eq!(
            pg.volume,
            Some(("p-pgdata".into(), "/var/lib/postgresql/data".into()))
        );
        assert_eq!(pg.publish, [(15432, 5432)]);
        assert_eq!(pg.stop_signal, "SIGINT");
        let feed = ws.iter().find(|w| w.instance == "feed").expect("feed");
        assert!(feed.publish.is_empty() && feed.service);
        assert_eq!(feed.cmd, ["socialnet", "feed"]);
    }
}
