//! Scenarios as data: expected trace shapes (`traces/*.spec`) and the load mix
//! (`load/*.workload`, parsed by [`workload`]), chaos experiments
//! (`chaos/*.experiment`, parsed by [`experiment`]), and the phone population of the
//! mobile simulator (`sim/*.profile`, parsed by [`sim`]).
//!
//! The files are compiled into `socialctl`, so it works from any directory; a user can
//! still point `verify-traces --specs DIR` at edited copies. This crate depends on no
//! service crate.

pub mod experiment;
pub mod sim;
pub mod workload;

/// The built-in trace specs: (file name, text).
pub const TRACE_SPECS: &[(&str, &str)] = &[
    ("auth-login.spec", include_str!("../traces/auth-login.spec")),
    (
        "auth-logout.spec",
        include_str!("../traces/auth-logout.spec"),
    ),
    (
        "auth-register.spec",
        include_str!("../traces/auth-register.spec"),
    ),
    (
        "feed-create-post.spec",
        include_str!("../traces/feed-create-post.spec"),
    ),
    (
        "feed-get-post.spec",
        include_str!("../traces/feed-get-post.spec"),
    ),
    (
        "feed-timeline.spec",
        include_str!("../traces/feed-timeline.spec"),
    ),
    (
        "media-process.spec",
        include_str!("../traces/media-process.spec"),
    ),
    (
        "media-upload.spec",
        include_str!("../traces/media-upload.spec"),
    ),
    (
        "messaging-deliver.spec",
        include_str!("../traces/messaging-deliver.spec"),
    ),
    (
        "messaging-post-message.spec",
        include_str!("../traces/messaging-post-message.spec"),
    ),
    (
        "messaging-send.spec",
        include_str!("../traces/messaging-send.spec"),
    ),
    (
        "profile-follow.spec",
        include_str!("../traces/profile-follow.spec"),
    ),
    (
        "profile-get.spec",
        include_str!("../traces/profile-get.spec"),
    ),
    ("web-home.spec", include_str!("../traces/web-home.spec")),
    (
        "web-profile.spec",
        include_str!("../traces/web-profile.spec"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_spec_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("traces dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".spec"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = super::TRACE_SPECS.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, listed, "add new spec files to TRACE_SPECS");
    }
}
