//! The table with the user's settings applied ([`Stack`]): which instances run, on which
//! ports, how each reaches the others, and whether the whole is consistent (unique
//! names, no port collision, known dependencies).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    COMPONENTS, Component, DEFAULT_SERVICE_BASE, FAULT_PROXY, ImageMode, Net, OTLP_RECEIVER,
    Presence, Role, StackConfig,
};

/// One instance a runtime starts: replica `replica` of `component`.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub component: Component,
    pub replica: u32,
}

/// One path through the fault proxy: `from` reaches `to` (one instance) at the proxy's
/// listener `index`, which forwards to where `to` really is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLink {
    /// `from:to`, e.g. `feed:postgres` or `gateway:feed-2`.
    pub name: String,
    pub from: &'static str,
    /// The component called (for calls that go through the gateway, the callee named
    /// by the path, not the gateway).
    pub to: &'static str,
    /// The instance of `to` (its replica), or the gateway for service-to-service calls.
    pub upstream: (&'static str, u32),
    pub index: u16,
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
        let proxy = self.cfg.fault_proxy;
        self.components.iter().filter(move |c| match c.presence {
            Presence::Always => true,
            Presence::OfficialOnly => official,
            Presence::FaultProxy => proxy,
        })
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

    /// The dependencies of `c`, with [`OTLP_RECEIVER`] resolved; services and the
    /// gateway also wait for the fault proxy when it runs (they reach others through it).
    pub fn depends_on(&self, c: &Component) -> Vec<&'static str> {
        let mut deps: Vec<&'static str> = c
            .depends_on
            .iter()
            .map(|&d| {
                if d == OTLP_RECEIVER {
                    self.otlp_receiver()
                } else {
                    d
                }
            })
            .collect();
        if matches!(c.role, Role::Service | Role::Frontend | Role::Gateway)
            && self.component(FAULT_PROXY).is_some()
        {
            deps.push(FAULT_PROXY);
        }
        deps
    }

    /// The paths through the fault proxy (none without it): each service to each store
    /// it depends on, to auth (its signing keys) and to the services its entry `calls`
    /// (those calls go through the gateway, so their link forwards to it), and the
    /// gateway to each replica of each routed component.
    pub fn links(&self) -> Vec<ProxyLink> {
        if self.component(FAULT_PROXY).is_none() {
            return Vec::new();
        }
        let mut out: Vec<ProxyLink> = Vec::new();
        let mut push = |from: &'static str, to: &'static str, upstream: (&'static str, u32)| {
            let index = out.len() as u16;
            let target = instance_name(upstream.0, upstream.1);
            let name = if upstream.0 == "gateway" || upstream.1 == 0 {
                format!("{from}:{to}")
            } else {
                format!("{from}:{target}")
            };
            out.push(ProxyLink {
                name,
                from,
                to,
                upstream,
                index,
            });
        };
        for c in self
            .components()
            .filter(|c| matches!(c.role, Role::Service | Role::Frontend))
        {
            for d in c.depends_on {
                if let Some(dep) = self.component(d)
                    && matches!(dep.role, Role::Postgres | Role::Redis | Role::ObjectStore)
                {
                    push(c.name, dep.name, (dep.name, 0));
                }
            }
            // Every service fetches auth's signing keys (directly); the calls of its
            // entry go through the gateway.
            if c.name != "auth" && self.component("auth").is_some() {
                push(c.name, "auth", ("auth", 0));
            }
            for callee in c.calls {
                if self.component(callee).is_some() {
                    push(c.name, callee, ("gateway", 0));
                }
            }
        }
        for c in self.components().filter(|c| !c.routes.is_empty()) {
            for r in 0..self.replicas(c) {
                push("gateway", c.name, (c.name, r));
            }
        }
        out
    }

    /// Where `from` reaches replica `replica` of `to` on `net`: through the fault
    /// proxy's link when there is one, else directly.
    pub fn reach(&self, net: Net, from: &str, to: &str, replica: u32) -> (String, u16) {
        let link = self.links().into_iter().find(|l| {
            l.from == from && l.to == to && (l.upstream.0 == "gateway" || l.upstream.1 == replica)
        });
        match link {
            Some(l) if !self.cfg.external.contains_key(to) => self.link_addr(net, &l),
            _ => self.addr(net, to, replica),
        }
    }

    /// The proxy's listener of link `l` on `net`.
    pub fn link_addr(&self, net: Net, l: &ProxyLink) -> (String, u16) {
        let (h, p) = self.addr(net, FAULT_PROXY, 0);
        (h, p + 1 + l.index)
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
            if matches!(c.role, Role::Service | Role::Frontend | Role::ObjectStore) {
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
        if let Some(proxy) = self.component(FAULT_PROXY) {
            let base = self.host_port(proxy, 0, 0);
            for l in self.links() {
                let hp = base + 1 + l.index;
                if let Some(other) = ports.insert(hp, format!("chaosproxy link {}", l.name)) {
                    return Err(format!(
                        "chaosproxy link {} and {other} would both use port {hp}; move the proxy with `socialctl up --fault-proxy-port N`",
                        l.name
                    ));
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
                "web",
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

#[cfg(test)]
mod proxy_tests {
    use super::*;

    #[test]
    fn the_fault_proxy_stands_on_every_path_it_names() {
        let plain = Stack::new(StackConfig::default());
        assert!(plain.links().is_empty());
        assert!(plain.component(FAULT_PROXY).is_none());
        let mut cfg = StackConfig {
            fault_proxy: true,
            ..Default::default()
        };
        cfg.scale.insert("feed".into(), 2);
        let s = Stack::new(cfg);
        s.validate().expect("valid with the proxy");
        let names: Vec<String> = s.links().into_iter().map(|l| l.name).collect();
        for want in [
            "feed:postgres",
            "feed:redis",
            "feed:auth",
            "feed:profile",
            "feed:media",
            "auth:profile",
            "media:objects",
            "gateway:feed",
            "gateway:feed-2",
        ] {
            assert!(names.contains(&want.to_owned()), "{want} in {names:?}");
        }
        // Only the calls the table names: messaging calls no service.
        assert!(
            !names.contains(&"messaging:profile".to_owned()),
            "{names:?}"
        );
        // Through the proxy: the link's own port, one past the control port per link.
        let feed_pg = s
            .links()
            .into_iter()
            .find(|l| l.name == "feed:postgres")
            .unwrap();
        assert_eq!(
            s.reach(Net::Local, "feed", "postgres", 0),
            ("127.0.0.1".into(), 8475 + feed_pg.index)
        );
        assert_eq!(
            s.reach(Net::Docker, "feed", "postgres", 0),
            ("chaosproxy".into(), 8475 + feed_pg.index)
        );
        // Who is not on a link reaches the component directly.
        assert_eq!(
            s.reach(Net::Local, "", "postgres", 0),
            ("127.0.0.1".into(), 15432)
        );
        // The proxy starts before everything that reaches others through it.
        let order: Vec<String> = s.instances().into_iter().map(|i| i.name).collect();
        let at = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(at("chaosproxy") < at("profile") && at("chaosproxy") < at("gateway"));
        assert!(
            s.depends_on(s.component("feed").unwrap())
                .contains(&FAULT_PROXY)
        );
        // A link that would land on a port in use is refused, with what to do.
        let mut clash = s.cfg.clone();
        clash.ports.insert("gateway".into(), 8476);
        let e = Stack::new(clash).validate().unwrap_err();
        assert!(
            e.contains("8476") && e.contains("--fault-proxy-port"),
            "{e}"
        );
    }
}
