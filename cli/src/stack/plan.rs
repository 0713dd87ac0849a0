//! The table with the user's settings applied ([`Stack`]): which instances run, on which
//! ports, how each reaches the others, and whether the whole is consistent (unique
//! names, no port collision, known dependencies).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    COMPONENTS, Component, DEFAULT_SERVICE_BASE, ImageMode, Net, OTLP_RECEIVER, Presence, Role,
    StackConfig,
};

/// One instance a runtime starts: replica `replica` of `component`.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub component: Component,
    pub replica: u32,
}

/// The table with the user's settings applied: what runtimes and renderers translate.
#[derive(Debug, Clone)]
pub struct Stack {
    pub cfg: StackConfig,
    components: Vec<Component>,
}

impl Stack {
    /// The built-in table with these settings.
    pub fn new(cfg: StackConfig) -> Self {
        Self {
            cfg,
            components: COMPONENTS.to_vec(),
        }
    }

    /// Adds an entry before the gateway (tests add a component this way, proving that a
    /// new component needs nothing but its entry).
    pub fn with(mut self, c: Component) -> Self {
        let at = self
            .components
            .iter()
            .position(|x| x.role == Role::Gateway)
            .unwrap_or(self.components.len());
        self.components.insert(at, c);
        self
    }

    /// Every component of this image mode, in start order, external ones included.
    pub fn components(&self) -> impl Iterator<Item = &Component> {
        let official = self.cfg.images == ImageMode::Official;
        self.components
            .iter()
            .filter(move |c| official || c.presence == Presence::Always)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components().find(|c| c.name == name)
    }

    /// Names of the components that may be scaled.
    pub fn scalable(&self) -> Vec<&'static str> {
        self.components()
            .filter(|c| c.scalable)
            .map(|c| c.name)
            .collect()
    }

    pub fn replicas(&self, c: &Component) -> u32 {
        if c.scalable {
            self.cfg.scale.get(c.name).copied().unwrap_or(1).max(1)
        } else {
            1
        }
    }

    /// The dependencies of `c`, with [`OTLP_RECEIVER`] resolved.
    pub fn depends_on(&self, c: &Component) -> Vec<&'static str> {
        c.depends_on
            .iter()
            .map(|&d| {
                if d == OTLP_RECEIVER {
                    self.otlp_receiver()
                } else {
                    d
                }
            })
            .collect()
    }

    /// The component the services send spans to.
    pub fn otlp_receiver(&self) -> &'static str {
        if self.cfg.images == ImageMode::Official {
            "collector"
        } else {
            "sink"
        }
    }

    /// The instances a runtime starts: every replica of every component, minus external
    /// ones, and only those named by `--only` when it is given.
    pub fn instances(&self) -> Vec<Instance> {
        let mut out = Vec::new();
        for c in self.components() {
            if self.cfg.external.contains_key(c.name)
                || (!self.cfg.only.is_empty() && !self.cfg.only.contains(c.name))
            {
                continue;
            }
            for r in 0..self.replicas(c) {
                out.push(Instance {
                    name: instance_name(c.name, r),
                    component: *c,
                    replica: r,
                });
            }
        }
        out
    }

    /// The host port of port `index` of replica `replica` of `c`.
    pub fn host_port(&self, c: &Component, index: usize, replica: u32) -> u16 {
        let p = c.ports[index];
        let key = if index == 0 {
            c.name.to_owned()
        } else {
            format!("{}.{}", c.name, p.name)
        };
        let base = self.cfg.ports.get(&key).copied().unwrap_or_else(|| {
            if matches!(c.role, Role::Service | Role::ObjectStore) {
                // Services (and media's object store beside them) move together with
                // --service-base-port.
                (i32::from(p.host) + i32::from(self.cfg.service_base_port)
                    - i32::from(DEFAULT_SERVICE_BASE)) as u16
            } else {
                p.host
            }
        });
        base + 100 * replica as u16
    }

    /// Host and main port of replica `replica` of the component `name`, as other
    /// components on `net` reach it.
    pub fn addr(&self, net: Net, name: &str, replica: u32) -> (String, u16) {
        if let Some(ext) = self.cfg.external.get(name)
            && let Some((h, p)) = ext.rsplit_once(':')
            && let Ok(p) = p.parse()
        {
            return (h.to_owned(), p);
        }
        let Some(c) = self.component(name) else {
            return ("127.0.0.1".into(), 9);
        };
        match net {
            Net::Local => ("127.0.0.1".into(), self.host_port(c, 0, replica)),
            Net::Docker => (instance_name(name, replica), c.ports[0].inner),
        }
    }

    /// Checks the table and settings: unique names, ports that do not collide, known
    /// dependencies, scale and --only naming real components.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        for c in self.components() {
            if !names.insert(c.name) {
                return Err(format!("two components are named {}", c.name));
            }
            for d in self.depends_on(c) {
                if self.component(d).is_none() {
                    return Err(format!("{} depends on unknown component {d}", c.name));
                }
            }
            // Ports on the host: every port of what can run as a host process, and the
            // published ports of Docker-only components (the Collector publishes none).
            if !(c.publish || c.presence == Presence::Always) {
                continue;
            }
            for r in 0..self.replicas(c) {
                for (i, p) in c.ports.iter().enumerate() {
                    let hp = self.host_port(c, i, r);
                    let who = format!("{}:{}", instance_name(c.name, r), p.name);
                    if let Some(other) = ports.insert(hp, who.clone()) {
                        return Err(format!("{who} and {other} would both use port {hp}"));
                    }
                }
            }
        }
        for n in self.cfg.scale.keys() {
            if !self.scalable().contains(&n.as_str()) {
                return Err(format!(
                    "cannot scale {n:?}; scalable components: {}",
                    self.scalable().join(", ")
                ));
            }
        }
        for n in self.cfg.only.iter().chain(self.cfg.external.keys()) {
            if self.component(n).is_none() {
                return Err(format!(
                    "unknown component {n:?}; components: {}",
                    self.components()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// The name of replica `r` (0-based) of a component: `feed`, `feed-2`, …
pub fn instance_name(name: &str, r: u32) -> String {
    if r == 0 {
        name.to_owned()
    } else {
        format!("{name}-{}", r + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent_and_in_dependency_order() {
        for images in [ImageMode::Local, ImageMode::Official] {
            let s = Stack::new(StackConfig {
                images,
                scale: BTreeMap::from([("feed".into(), 9), ("auth".into(), 9)]),
                ..Default::default()
            });
            s.validate().expect("the built-in table is valid");
            let mut seen = BTreeSet::new();
            for c in s.components() {
                for d in s.depends_on(c) {
                    assert!(seen.contains(d), "{} starts before {d}", c.name);
                }
                seen.insert(c.name);
            }
        }
    }

    #[test]
    fn replicas_get_their_own_ports_and_a_collision_is_refused() {
        let mut cfg = StackConfig::default();
        cfg.scale.insert("feed".into(), 2);
        let s = Stack::new(cfg.clone());
        assert_eq!(s.addr(Net::Local, "feed", 1), ("127.0.0.1".into(), 8183));
        assert_eq!(s.addr(Net::Docker, "feed", 1), ("feed-2".into(), 8083));
        let names: Vec<String> = s.instances().into_iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            [
                "postgres",
                "redis",
                "sink",
                "profile",
                "auth",
                "feed",
                "feed-2",
                "messaging",
                "objects",
                "media",
                "gateway"
            ]
        );
        cfg.ports.insert("gateway".into(), 8083);
        let err = Stack::new(cfg).validate().unwrap_err();
        assert!(err.contains("port 8083"), "{err}");
    }

    #[test]
    fn only_and_external_shape_the_instances() {
        let s = Stack::new(StackConfig {
            only: BTreeSet::from(["gateway".into()]),
            external: BTreeMap::from([("feed".into(), "10.1.2.3:9000".into())]),
            ..Default::default()
        });
        let names: Vec<String> = s.instances().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["gateway"]);
        assert_eq!(s.addr(Net::Docker, "feed", 0), ("10.1.2.3".into(), 9000));
    }
}
