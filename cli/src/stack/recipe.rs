//! Launch recipes: how each role starts, as one command line per instance. Both
//! runtimes and the Compose renderer translate these; none spells a PostgreSQL, Redis
//! or NGINX command line of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::official::{self, ImageMode};
use super::secrets::{self, Secrets};
use super::{Component, Instance, Launch, Net, Role, Stack, instance_name};

/// How one instance is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// The program (a name the runtime resolves); `None`: the image's own entrypoint.
    pub program: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Files the program reads, written into its run directory first: (name, content).
    pub files: Vec<(String, String)>,
    /// A pulled image to run instead of the stack's own (official-image mode).
    pub image: Option<String>,
    /// Name of the data directory it keeps (a volume on Docker), when it has one.
    pub data: Option<String>,
}

impl Exec {
    /// Whether it is a service that exports spans and counts them at `/metrics` (the
    /// object store, also `socialnet`, does neither).
    pub fn exports_spans(&self) -> bool {
        self.env.contains_key("OTEL_SERVICE_NAME")
    }
}

/// Where an instance's files live on its runtime.
#[derive(Debug, Clone)]
pub struct Paths {
    /// A private directory for generated files and temporary data.
    pub run: String,
    /// Its data directory, when the component has one.
    pub data: Option<String>,
}

/// PostgreSQL's start-up, the same on the host and in the image: create the cluster on
/// first start, then run the server in the foreground as the `postgres` user
/// (`setpriv` execs, so the runtime's pid is the postmaster's own).
const PG_SCRIPT: &str = r#"set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
mkdir -p "$PGDATA"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$PGDATA"
  AS_PG="setpriv --reuid=postgres --regid=postgres --init-groups --"
else
  AS_PG=""
fi
chmod 700 "$PGDATA"
# A server killed a moment ago (`socialctl chaos kill postgres`) lingers as a zombie
# until it is reaped, and PostgreSQL takes its lock files (the data directory's and the
# socket's) for a live server's: a zombie's locks are stale. A live one is waited for
# (up to 30 s) and then left to refuse.
for LOCK in "$PGDATA/postmaster.pid" "$PG_SOCKETS"/.s.PGSQL.*.lock; do
  [ -f "$LOCK" ] || continue
  OLD=$(head -n 1 "$LOCK")
  i=0
  while [ -n "$OLD" ] && [ -d "/proc/$OLD" ] && [ "$OLD" != "$$" ] && [ $i -lt 300 ]; do
    if grep -q '^State:[[:space:]]*Z' "/proc/$OLD/status" 2>/dev/null; then
      rm -f "$LOCK"
      break
    fi
    i=$((i + 1))
    sleep 0.1
  done
done
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  $AS_PG "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
fi
AUTH=trust
if [ -n "$PG_PASSWORD" ]; then
  AUTH=scram-sha-256
  echo "ALTER ROLE postgres PASSWORD '$PG_PASSWORD'" |
    $AS_PG "$BIN/postgres" --single -D "$PGDATA" -c password_encryption=scram-sha-256 postgres >/dev/null
fi
unset PG_PASSWORD
{
  echo "local all all trust"
  echo "host all all 127.0.0.1/32 $AUTH"
  echo "host all all ::1/128 $AUTH"
  if [ "$PG_LISTEN" = "*" ]; then echo "host all all 0.0.0.0/0 $AUTH"; fi
} > "$PGDATA/pg_hba.conf"
exec $AS_PG "$BIN/postgres" -D "$PGDATA" -p "$PGPORT" -c listen_addresses="$PG_LISTEN" \
  -c unix_socket_directories="$PG_SOCKETS" $PG_SETTINGS"#;

/// Server settings for every PostgreSQL the stack runs.
fn pg_settings(ephemeral: bool) -> Vec<String> {
    // synchronous_commit stays on: with it off a commit is acknowledged before its WAL
    // leaves PostgreSQL's memory, and a killed server (`socialctl chaos kill postgres`)
    // loses writes the API answered 201 for. The local-stack test checks it.
    // shared_buffers at a quarter of the default: the data set sits in the kernel's page
    // cache anyway, and under `load --users 500` the default's 128 MiB, counted again in
    // the container's memory beside that cache, took PostgreSQL to 318 MiB and the stack
    // past its 512 MiB budget.
    // max_connections sizes shared memory that is all counted in PostgreSQL's share:
    // a stack opens 32 connections (8 feed, 8 profile, 4 for each of the others) and each
    // replica its own pool, so 100 leaves room for a scaled stack and a psql or two.
    let mut s = vec!["shared_buffers=32MB"];
    if ephemeral {
        // A test cluster: losing it on a crash is fine, and CREATE DATABASE per test
        // would otherwise wait on fsync. Tests run many stacks' pools against it at once.
        s.extend(["max_connections=400", "fsync=off", "full_page_writes=off"]);
    } else {
        s.push("max_connections=100");
    }
    s.into_iter()
        .flat_map(|v| ["-c".to_owned(), v.to_owned()])
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Stack {
    /// `host:port` of a component as `net` reaches it.
    fn at(&self, net: Net, name: &str, replica: u32) -> String {
        let (h, p) = self.addr(net, name, replica);
        format!("{h}:{p}")
    }

    /// Fills `{component}`, `{self}` and `{public}` in an entry's environment value.
    fn fill(&self, net: Net, inst: &Instance, value: &str) -> String {
        let mut out = value
            .replace("{self}", &self.at(net, inst.component.name, inst.replica))
            .replace(
                "{workshop}",
                if self.cfg.workshop { "true" } else { "false" },
            );
        out = out.replace("{objects_secret}", &self.cfg.secrets.objects);
        out = out.replace(
            "{public}",
            &format!("127.0.0.1:{}", self.host_port_of("gateway")),
        );
        for c in self.components() {
            let key = format!("{{{}}}", c.name);
            if out.contains(&key) {
                let (h, p) = self.reach(net, inst.component.name, c.name, 0);
                out = out.replace(&key, &format!("{h}:{p}"));
            }
        }
        out
    }

    /// `host:port` where `from` reaches `to` on `net` (through the fault proxy when it
    /// runs).
    fn via(&self, net: Net, from: &str, to: &str) -> String {
        let (h, p) = self.reach(net, from, to, 0);
        format!("{h}:{p}")
    }

    /// The PostgreSQL server as `net` reaches it, with credentials, without a database.
    pub fn postgres_url(&self, net: Net) -> String {
        self.postgres_url_from(net, "")
    }

    /// The same as component `from` reaches it (through the fault proxy when it runs).
    fn postgres_url_from(&self, net: Net, from: &str) -> String {
        format!(
            "postgres://{}{}",
            Secrets::userinfo("postgres", &self.postgres_password()),
            self.via(net, from, "postgres")
        )
    }

    /// Redis as `net` reaches it, with credentials.
    pub fn redis_url(&self, net: Net) -> String {
        self.redis_url_from(net, "")
    }

    fn redis_url_from(&self, net: Net, from: &str) -> String {
        format!(
            "redis://{}{}/0",
            Secrets::userinfo("", &self.redis_password()),
            self.via(net, from, "redis")
        )
    }

    /// A server given with `--external` is the user's: its credentials are not ours.
    fn postgres_password(&self) -> String {
        if self.cfg.external.contains_key("postgres") {
            String::new()
        } else {
            self.cfg.secrets.postgres.clone()
        }
    }

    fn redis_password(&self) -> String {
        if self.cfg.external.contains_key("redis") {
            String::new()
        } else {
            self.cfg.secrets.redis.clone()
        }
    }

    fn host_port_of(&self, name: &str) -> u16 {
        self.component(name)
            .map(|c| self.host_port(c, 0, 0))
            .unwrap_or(0)
    }

    /// The port instance `inst` listens on, on `net`.
    pub fn listen_port(&self, net: Net, inst: &Instance, index: usize) -> u16 {
        match net {
            Net::Local => self.host_port(&inst.component, index, inst.replica),
            Net::Docker => inst.component.ports[index].inner,
        }
    }

    /// The environment of one service replica.
    pub fn service_env(&self, net: Net, inst: &Instance) -> BTreeMap<String, String> {
        let name = inst.component.name;
        let bind = bind(net);
        let upper = name.to_ascii_uppercase().replace('-', "_");
        let env_name = match net {
            Net::Local => "local",
            Net::Docker => "docker",
        };
        let mut env = BTreeMap::new();
        let mut set = |k: String, v: String| {
            env.insert(k, v);
        };
        set(
            format!("{upper}_LISTEN"),
            format!("{bind}:{}", self.listen_port(net, inst, 0)),
        );
        set(
            format!("{upper}_DATABASE_URL"),
            format!("{}/{name}", self.postgres_url_from(net, name)),
        );
        set("REDIS_URL".into(), self.redis_url_from(net, name));
        set(
            "AUTH_JWKS_URL".into(),
            format!("http://{}/api/auth/jwks", self.via(net, name, "auth")),
        );
        // Service-to-service calls go through the gateway, so replicas are load-balanced
        // (with the fault proxy, through a link of their own that forwards to it).
        let gateway = self.at(net, "gateway", 0);
        let through_gateway = |callee: &str| {
            let (h, p) = self.reach(net, name, callee, 0);
            if self
                .links()
                .iter()
                .any(|l| l.from == name && l.to == callee)
            {
                format!("http://{h}:{p}")
            } else {
                format!("http://{gateway}")
            }
        };
        set("PROFILE_URL".into(), through_gateway("profile"));
        set("MEDIA_URL".into(), through_gateway("media"));
        set(
            "PUBLIC_URL".into(),
            format!("http://127.0.0.1:{}", self.host_port_of("gateway")),
        );
        // Spans go to the Collector when there is one (official-image mode), else
        // straight to the sink.
        set(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            format!("http://{}", self.at(net, self.otlp_receiver(), 0)),
        );
        set("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into());
        set("OTEL_SERVICE_NAME".into(), name.to_owned());
        set(
            "OTEL_RESOURCE_ATTRIBUTES".into(),
            format!(
                "service.instance.id={},deployment.environment.name={env_name}",
                instance_name(name, inst.replica)
            ),
        );
        if let Some(limit) = inst.component.body_limit {
            set("SOCIALNET_MAX_BODY".into(), limit.to_string());
        }
        // A short batch delay, so traces are complete in the sink within a second or two.
        set("OTEL_BSP_SCHEDULE_DELAY".into(), "1000".into());
        set("RUST_LOG".into(), "info".into());
        env
    }

    /// The launch recipe of `inst` on `net`.
    pub fn exec(&self, net: Net, inst: &Instance, paths: &Paths) -> Exec {
        let c: &Component = &inst.component;
        let official = self.cfg.images == ImageMode::Official && net == Net::Docker;
        let bind = bind(net);
        let port = self.listen_port(net, inst, 0);
        let mut e = Exec {
            program: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            files: Vec::new(),
            image: None,
            data: c.data.map(|(name, _)| name.to_owned()),
        };
        match (c.role, c.launch) {
            (_, Launch::Command { program, args }) => {
                e.program = Some(program.to_owned());
                e.args = args
                    .iter()
                    .map(|a| {
                        a.replace("{port}", &port.to_string())
                            .replace("{bind}", bind)
                            .replace("{name}", &inst.name)
                    })
                    .collect();
            }
            (Role::Postgres, _) if official => {
                e.image = Some(official::POSTGRES_IMAGE.into());
                let password = self.postgres_password();
                if password.is_empty() {
                    e.env
                        .insert("POSTGRES_HOST_AUTH_METHOD".into(), "trust".into());
                } else {
                    e.env.insert("POSTGRES_PASSWORD".into(), password);
                }
                e.args = ["postgres".to_owned()]
                    .into_iter()
                    .chain(pg_settings(self.cfg.ephemeral))
                    .collect();
                // Its own volume: the official image's PostgreSQL major differs from
                // Debian bookworm's, so the data directories are not interchangeable.
                e.data = c.data.map(|(name, _)| format!("{name}-official"));
            }
            (Role::Postgres, _) => {
                let data = paths.data.clone().unwrap_or_default();
                e.program = Some("sh".into());
                e.args = vec!["-c".into(), PG_SCRIPT.into()];
                let sockets = match net {
                    Net::Local => data.clone(),
                    Net::Docker => "/tmp".into(),
                };
                for (k, v) in [
                    ("PGDATA", data),
                    ("PGPORT", port.to_string()),
                    (
                        "PG_LISTEN",
                        if net == Net::Local { "127.0.0.1" } else { "*" }.into(),
                    ),
                    ("PG_SOCKETS", sockets),
                    ("PG_SETTINGS", pg_settings(self.cfg.ephemeral).join(" ")),
                    ("PG_PASSWORD", self.postgres_password()),
                ] {
                    e.env.insert(k.into(), v);
                }
            }
            (Role::Redis, _) => {
                // Settings travel in a file, so the password is not on a command line
                // every local user can read.
                let mut conf = format!(
                    "port {port}\nbind {bind}\nprotected-mode no\nsave \"\"\nappendonly no\n"
                );
                let password = self.redis_password();
                if !password.is_empty() {
                    conf.push_str(&format!("requirepass {password}\n"));
                }
                e.program = Some("redis-server".into());
                e.args = vec![format!("{}/redis.conf", paths.run)];
                e.files = vec![("redis.conf".into(), conf)];
                if official {
                    e.image = Some(official::REDIS_IMAGE.into());
                }
            }
            (Role::Sink, _) => {
                e.program = Some("socialctl".into());
                e.args = strings(&[
                    "sink",
                    "--grpc",
                    &format!("{bind}:{}", self.listen_port(net, inst, 1)),
                    "--http",
                    &format!("{bind}:{port}"),
                ]);
            }
            (Role::Service | Role::Frontend, _) => {
                e.program = Some("socialnet".into());
                e.args = vec![c.name.to_owned()];
                e.env = self.service_env(net, inst);
            }
            (Role::Gateway, _) => {
                let run = &paths.run;
                e.program = Some("nginx".into());
                e.args = strings(&[
                    "-p",
                    run,
                    "-c",
                    &format!("{run}/nginx.conf"),
                    "-g",
                    "daemon off;",
                ]);
                e.files = vec![("nginx.conf".into(), self.nginx_conf(net, run))];
                if official {
                    e.image = Some(official::NGINX_IMAGE.into());
                }
            }
            (Role::Collector, _) => {
                e.image = Some(official::COLLECTOR_IMAGE.into());
                e.args = vec!["--config=env:OTELCOL_CONFIG".into()];
                e.env.insert(
                    "OTELCOL_CONFIG".into(),
                    official::COLLECTOR_CONFIG.to_owned(),
                );
            }
            (Role::Jaeger, _) => e.image = Some(official::JAEGER_IMAGE.into()),
            (Role::FaultProxy, _) => {
                e.program = Some("socialnet".into());
                e.args = vec!["chaosproxy".into()];
                let links: Vec<String> = self
                    .links()
                    .iter()
                    .map(|l| {
                        let listen = match net {
                            Net::Local => format!("{bind}:{}", port + 1 + l.index),
                            Net::Docker => format!("{bind}:{}", c.ports[0].inner + 1 + l.index),
                        };
                        let (h, p) = self.addr(net, l.upstream.0, l.upstream.1);
                        format!("{}@{listen}>{h}:{p}", l.name)
                    })
                    .collect();
                for (k, v) in [
                    ("CHAOSPROXY_LISTEN", format!("{bind}:{port}")),
                    ("CHAOSPROXY_LINKS", links.join(" ")),
                    (
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        format!("http://{}", self.at(net, self.otlp_receiver(), 0)),
                    ),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
                    ("OTEL_SERVICE_NAME", "chaosproxy".into()),
                    ("OTEL_BSP_SCHEDULE_DELAY", "1000".into()),
                    ("RUST_LOG", "info".into()),
                ] {
                    e.env.insert(k.into(), v);
                }
            }
            (Role::ObjectStore, _) if official => {
                e.image = Some(official::MINIO_IMAGE.into());
                e.program = Some("minio".into());
                e.args = vec![
                    "server".into(),
                    paths.data.clone().unwrap_or_else(|| "/data".into()),
                    "--address".into(),
                    format!(":{port}"),
                ];
                for (k, v) in [
                    ("MINIO_ROOT_USER", secrets::OBJECTS_ACCESS_KEY.into()),
                    ("MINIO_ROOT_PASSWORD", self.cfg.secrets.objects.clone()),
                ] {
                    e.env.insert(k.into(), v);
                }
                // MinIO's on-disk format is its own: a volume of its own.
                e.data = c.data.map(|(name, _)| format!("{name}-official"));
            }
            (Role::ObjectStore, _) => {
                e.program = Some("socialnet".into());
                e.args = vec!["objects".into()];
                for (k, v) in [
                    ("OBJECTS_LISTEN", format!("{bind}:{port}")),
                    ("OBJECTS_ROOT", paths.data.clone().unwrap_or_default()),
                    ("OBJECTS_ACCESS_KEY", secrets::OBJECTS_ACCESS_KEY.into()),
                    ("OBJECTS_SECRET_KEY", self.cfg.secrets.objects.clone()),
                    // s3s instruments its handlers with spans carrying whole requests as
                    // debug strings: not telemetry a learner should read, so only its
                    // warnings pass (media's CLIENT spans name every S3 call).
                    ("RUST_LOG", "info,s3s=warn,s3s_fs=warn".into()),
                ] {
                    e.env.insert(k.into(), v);
                }
            }
            (Role::Program, Launch::Recipe) => {
                e.program = Some(c.name.to_owned());
            }
        }
        // Every socialnet process, and the sink, allocates with mimalloc, which by default
        // commits each arena it reserves as it goes, in transparent huge pages where the
        // kernel offers them: a service kept ~16 MiB more than with this off (measured idle
        // on the local runtime: 57 MiB per service, 41 MiB with it off), and the sink spent
        // 40 % of its CPU zeroing fresh 2 MiB pages for decode buffers it had just freed
        // (perf under `socialctl bench`: 40 µs of sink CPU per traced timeline request,
        // 26-33 µs with it off).
        if matches!(e.program.as_deref(), Some("socialnet" | "socialctl")) {
            e.env
                .insert("MIMALLOC_ARENA_EAGER_COMMIT".into(), "0".into());
        }
        for (k, v) in c.env {
            e.env.insert((*k).to_owned(), self.fill(net, inst, v));
        }
        if matches!(c.role, Role::Service | Role::Frontend) {
            for (k, v) in &self.cfg.env {
                e.env.insert(k.clone(), v.clone());
            }
        }
        e
    }
}

/// The address a program listens on: loopback on the host, every interface in a
/// container.
pub fn bind(net: Net) -> &'static str {
    match net {
        Net::Local => "127.0.0.1",
        Net::Docker => "0.0.0.0",
    }
}

/// The Debian package that brings a program, for "install it with …" advice.
pub fn package_of(program: &str) -> &'static str {
    match program {
        "redis-server" => "redis-server",
        "nginx" => "nginx-light",
        "sh" | "setpriv" => "util-linux",
        _ => "postgresql postgresql-contrib",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::StackConfig;

    fn exec_of(s: &Stack, net: Net, name: &str) -> Exec {
        let inst = s
            .instances()
            .into_iter()
            .find(|i| i.name == name)
            .expect("instance");
        s.exec(
            net,
            &inst,
            &Paths {
                run: "/run/x".into(),
                data: Some("/data/x".into()),
            },
        )
    }

    #[test]
    fn a_service_reaches_its_neighbours_on_each_network() {
        let s = Stack::new(StackConfig::default());
        let local = exec_of(&s, Net::Local, "auth");
        assert_eq!(local.program.as_deref(), Some("socialnet"));
        assert_eq!(local.env["AUTH_LISTEN"], "127.0.0.1:8081");
        assert_eq!(local.env["AUTH_SELF_URL"], "http://127.0.0.1:8081");
        assert_eq!(
            local.env["AUTH_DATABASE_URL"],
            "postgres://postgres@127.0.0.1:15432/auth"
        );
        let docker = exec_of(&s, Net::Docker, "auth");
        assert_eq!(docker.env["AUTH_LISTEN"], "0.0.0.0:8081");
        assert_eq!(docker.env["REDIS_URL"], "redis://redis:6379/0");
        assert_eq!(
            docker.env["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://sink:4318"
        );
        let official = Stack::new(StackConfig {
            images: ImageMode::Official,
            ..Default::default()
        });
        assert_eq!(
            exec_of(&official, Net::Docker, "feed").env["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://collector:4318"
        );
    }

    #[test]
    fn postgres_is_one_recipe_with_ephemeral_settings_for_tests() {
        let s = Stack::new(StackConfig {
            ephemeral: true,
            ..Default::default()
        });
        let e = exec_of(&s, Net::Local, "postgres");
        assert_eq!(e.env["PGPORT"], "15432");
        assert!(e.env["PG_SETTINGS"].contains("fsync=off"), "{e:?}");
        let d = exec_of(&Stack::new(StackConfig::default()), Net::Docker, "postgres");
        assert_eq!(
            (d.env["PGPORT"].as_str(), d.env["PG_LISTEN"].as_str()),
            ("5432", "*")
        );
        assert!(!d.env["PG_SETTINGS"].contains("fsync=off"));
    }

    #[test]
    fn the_projects_passwords_reach_clients_and_servers_but_no_command_line() {
        let secrets = Secrets {
            postgres: "pgpw".into(),
            redis: "rdpw".into(),
            objects: "objpw".into(),
        };
        let s = Stack::new(StackConfig {
            secrets: secrets.clone(),
            ..Default::default()
        });
        let auth = exec_of(&s, Net::Docker, "auth");
        assert_eq!(
            auth.env["AUTH_DATABASE_URL"],
            "postgres://postgres:pgpw@postgres:5432/auth"
        );
        assert_eq!(auth.env["REDIS_URL"], "redis://:rdpw@redis:6379/0");
        let pg = exec_of(&s, Net::Local, "postgres");
        assert_eq!(pg.env["PG_PASSWORD"], "pgpw");
        let redis = exec_of(&s, Net::Local, "redis");
        assert!(redis.files[0].1.contains("requirepass rdpw"), "{redis:?}");
        // The object store's secret key: in its environment and media's, both ends.
        let objects = exec_of(&s, Net::Docker, "objects");
        assert_eq!(objects.env["OBJECTS_SECRET_KEY"], "objpw");
        assert_eq!(objects.env["OBJECTS_ROOT"], "/data/x", "its data directory");
        let media = exec_of(&s, Net::Docker, "media");
        assert_eq!(media.env["MEDIA_S3_SECRET_KEY"], "objpw");
        assert_eq!(media.env["MEDIA_S3_ENDPOINT"], "http://objects:9000");
        for e in [&pg, &redis, &auth, &objects, &media] {
            assert!(
                !e.args
                    .iter()
                    .any(|a| a.contains("pgpw") || a.contains("rdpw") || a.contains("objpw")),
                "{e:?}"
            );
        }
        // A server of the user's own keeps its own credentials.
        let mut cfg = s.cfg.clone();
        cfg.external
            .insert("postgres".into(), "db.example:5432".into());
        let ext = exec_of(&Stack::new(cfg), Net::Local, "auth");
        assert_eq!(
            ext.env["AUTH_DATABASE_URL"],
            "postgres://postgres@db.example:5432/auth"
        );
    }
}
