//! Registry mirrors (Hearth's `container.registry_mirrors`): an image of a registry that has a
//! mirror is pulled from the mirror first — for any registry, not only Docker Hub as the
//! daemon's own `registry-mirrors` — then tagged with its own name, so the job sees the image
//! it asked for. A mirror that cannot serve it is logged, and the image comes from its
//! registry. Images named by digest are pulled from their registry (a digest names content,
//! not a tag the mirror's copy can be given).

use std::collections::BTreeMap;

use crate::registry::registry_host;

/// An image as a mirror serves it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mirrored {
    /// The mirror's host (and path prefix), as configured.
    pub mirror: String,
    /// The reference to pull from the mirror.
    pub reference: String,
    /// The image's own repository and tag, to tag the mirror's copy with.
    pub repository: String,
    pub tag: String,
}

/// `image` as its registry's mirror serves it; `None` when its registry has no mirror or it
/// is named by digest.
pub(crate) fn mirrored(image: &str, mirrors: &BTreeMap<String, String>) -> Option<Mirrored> {
    if image.contains('@') {
        return None;
    }
    let host = registry_host(image);
    let mirror = mirrors.get(&host)?.trim_end_matches('/');
    // The image's repository without its tag, and the tag (`latest` when none is given).
    let (repository, tag) = match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (image, "latest"),
    };
    // The path within the registry: after an explicit host; Docker Hub's official images
    // live under `library/`.
    let path = match repository.split_once('/') {
        Some((first, rest)) if registry_host(image) == first => rest.to_owned(),
        Some((first, rest)) if host == "docker.io" && first == "index.docker.io" => rest.to_owned(),
        _ => repository.to_owned(),
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    Some(Mirrored {
        mirror: mirror.to_owned(),
        reference: format!("{mirror}/{path}:{tag}"),
        repository: repository.to_owned(),
        tag: tag.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_their_mirrors_paths() {
        let mirrors = BTreeMap::from([
            ("docker.io".to_owned(), "mirror.local:5000/hub/".to_owned()),
            ("ghcr.io".to_owned(), "mirror.local:5000/ghcr".to_owned()),
        ]);
        let reference = |image: &str| mirrored(image, &mirrors).map(|m| m.reference);
        assert_eq!(
            reference("node:20").as_deref(),
            Some("mirror.local:5000/hub/library/node:20")
        );
        assert_eq!(
            reference("gitea/runner-images").as_deref(),
            Some("mirror.local:5000/hub/gitea/runner-images:latest")
        );
        assert_eq!(
            reference("docker.io/library/alpine:3").as_deref(),
            Some("mirror.local:5000/hub/library/alpine:3")
        );
        assert_eq!(
            reference("ghcr.io/acme/tool:v1").as_deref(),
            Some("mirror.local:5000/ghcr/acme/tool:v1")
        );
        let m = mirrored("ghcr.io/acme/tool:v1", &mirrors).unwrap();
        assert_eq!(
            (m.repository.as_str(), m.tag.as_str()),
            ("ghcr.io/acme/tool", "v1")
        );
        assert_eq!(reference("quay.io/x/y:1"), None);
        assert_eq!(reference("node@sha256:0123"), None);
        // A registry with a port is not a tag.
        let local = BTreeMap::from([("127.0.0.1:5999".to_owned(), "m:1".to_owned())]);
        let m = mirrored("127.0.0.1:5999/private/busybox", &local).unwrap();
        assert_eq!(m.reference, "m:1/private/busybox:latest");
        assert_eq!(m.repository, "127.0.0.1:5999/private/busybox");
    }
}
