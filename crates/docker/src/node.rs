//! The node the runner lends to job containers whose image has none: bundled on this machine
//! by `hearth_host::node_bundle` (what is shared with the Kubernetes backend), and lent here
//! the Docker way: the bundle's folder mounted read-only at `/__e/node<major>`, or, for a
//! daemon that does not share this machine's folders (copy mode), copied into the job through
//! the archive API when an action first needs it (`upload_exposed`).

pub(crate) use hearth_host::node_bundle::{choose, major_of, no_node, Choice, NodeBundle};

/// The bind that lends `bundle` to a container, read-only, at its mount point.
pub(crate) fn bind(bundle: &NodeBundle) -> String {
    format!("{}:{}:ro", bundle.folder.display(), bundle.mount_point())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_bound_read_only_at_its_mount_point() {
        let bundle = NodeBundle {
            folder: "/x".into(),
            version: "v20.1.0".to_owned(),
            loader: "ld.so".to_owned(),
        };
        assert_eq!(bind(&bundle), "/x:/__e/node20:ro");
    }
}
