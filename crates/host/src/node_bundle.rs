//! A `node` for JavaScript actions in job containers whose image has none (the user pain point
//! #11, "node: not found"), lent by the runner as GitHub's runner lends its externals: the
//! part made on the runner's machine, which every container backend lends the same way.
//!
//! The runner's own `node` (the first on its `PATH`) is copied once, with every shared library
//! it loads and the dynamic loader itself, into a folder of its own under the runner's
//! externals folder. Job containers get that folder at `/__e/node<major>` (the Docker backend
//! mounts it read-only, or copies it into the job; the Kubernetes backend copies it into the
//! job's Pod) and run `node` through the bundled loader (`ld.so --library-path`), so it needs
//! nothing of the image: it runs on Debian, on Alpine (musl) and on an image with no C library
//! at all. The copy is keyed by the binary's path, size and modification time, made in a
//! temporary folder and renamed into place, so runners and jobs on one machine share it and
//! never see half of one.
//!
//! One thing differs from a `node` on the image's `PATH`: `process.execPath` names the loader.
//!
//! A node that reads part of itself from elsewhere on this machine cannot be lent: Debian's
//! own `nodejs` package loads some of its built-in modules from `/usr/share/nodejs`, which no
//! image has, so it would start and then fail in the middle of an action. Such a node is
//! refused when it is bundled, with what to install instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// Where job containers see a lent node, with its major version after it.
pub const MOUNT_PREFIX: &str = "/__e/node";
/// The file in a bundle that records the node's version (`v20.11.1`).
const VERSION_FILE: &str = "version";
/// Where a distribution's node (Debian's) finds the modules it does not carry inside.
const DISTRO_MODULES: &str = "/usr/share/nodejs/";

/// A node bundle on this machine, ready to be lent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeBundle {
    /// The bundle's folder (`bin/node`, `lib/` with the libraries and the loader).
    pub folder: PathBuf,
    /// Its version, as `node --version` says it (`v20.11.1`).
    pub version: String,
    /// The loader's file name under `lib/`.
    pub loader: String,
}

impl NodeBundle {
    /// The node's major version.
    pub fn major(&self) -> Option<u32> {
        major_of(&self.version)
    }

    /// Where job containers see the bundle.
    pub fn mount_point(&self) -> String {
        format!("{MOUNT_PREFIX}{}", self.major().unwrap_or(0))
    }

    /// The command line that runs it in a container where it is at its mount point, before
    /// the script.
    pub fn argv(&self) -> Vec<String> {
        self.argv_at(&self.mount_point())
    }

    /// The same with the bundle at `at` in the container (copied elsewhere).
    pub fn argv_at(&self, at: &str) -> Vec<String> {
        vec![
            format!("{at}/lib/{}", self.loader),
            "--library-path".to_owned(),
            format!("{at}/lib"),
            format!("{at}/bin/node"),
        ]
    }
}

/// The major version in `v20.11.1`.
pub fn major_of(version: &str) -> Option<u32> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Why no node could be lent.
#[derive(Debug, thiserror::Error)]
pub enum LendError {
    #[error("there is no `node` on the runner's PATH")]
    NoNode,
    #[error("`{program} {args}` failed: {why}")]
    Command {
        program: String,
        args: String,
        why: String,
    },
    #[error("cannot read what `ldd` says of {0}")]
    Libraries(PathBuf),
    #[error("{node} needs libraries this machine does not have: {missing}")]
    MissingLibraries { node: PathBuf, missing: String },
    #[error(
        "{0} loads part of itself from `{DISTRO_MODULES}` on this machine (a distribution's \
         own build), which job images do not have; put an official Node.js build (nodejs.org, \
         NodeSource) first on the runner's PATH"
    )]
    NotSelfContained(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LendError + 'a {
    move |source| LendError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The first executable `node` on `path` (a `PATH` value).
pub fn find_on_path(path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join("node"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The bundle of the first `node` on this process's `PATH`, under `externals`.
pub async fn bundle_runner_node(externals: &Path) -> Result<NodeBundle, LendError> {
    let path = std::env::var("PATH").unwrap_or_default();
    match find_on_path(&path) {
        Some(node) => bundle(&node, externals).await,
        None => Err(LendError::NoNode),
    }
}

/// A backend's node to lend: bundled at the first job that could use it, once for the
/// backend and its clones; or why there is none, which is also said once, as a warning.
#[derive(Clone, Debug, Default)]
pub struct NodeLender {
    /// Where the bundle is kept; `None` lends none.
    externals: Option<PathBuf>,
    bundled: std::sync::Arc<OnceCell<Result<NodeBundle, String>>>,
}

impl NodeLender {
    /// Lends the runner's node, bundled under `externals` (a folder that outlives the runner,
    /// shared by runners on this machine).
    pub fn new(externals: PathBuf) -> NodeLender {
        NodeLender {
            externals: Some(externals),
            bundled: Default::default(),
        }
    }

    /// The node to lend, bundled at the first call, or why there is none.
    pub async fn bundle(&self) -> Result<NodeBundle, String> {
        let Some(externals) = self.externals.as_ref() else {
            return Err("this runner is set to lend none".to_owned());
        };
        let bundled = self
            .bundled
            .get_or_init(|| async {
                bundle_runner_node(externals).await.map_err(|e| {
                    tracing::warn!(
                        "JavaScript actions in images without node will fail: no node to lend \
                         them: {e}"
                    );
                    e.to_string()
                })
            })
            .await;
        bundled.clone()
    }
}

/// The bundle of the node at `node`, under `externals`: the one made before when the binary
/// has not changed, else made now.
pub async fn bundle(node: &Path, externals: &Path) -> Result<NodeBundle, LendError> {
    let node = tokio::fs::canonicalize(node)
        .await
        .map_err(io("cannot resolve", node))?;
    let meta = tokio::fs::metadata(&node)
        .await
        .map_err(io("cannot read", &node))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = Sha256::digest(format!("{}\0{}\0{modified}", node.display(), meta.len()));
    let name: String = key[..8].iter().map(|b| format!("{b:02x}")).collect();
    let folder = externals.join(format!("node-{name}"));
    if let Some(bundle) = read_bundle(&folder).await {
        return Ok(bundle);
    }
    make_bundle(&node, externals, &folder).await
}

/// A bundle made before, if `folder` holds a whole one (the version file is written last).
async fn read_bundle(folder: &Path) -> Option<NodeBundle> {
    let version = tokio::fs::read_to_string(folder.join(VERSION_FILE))
        .await
        .ok()?;
    let mut lines = version.lines();
    let version = lines.next()?.trim().to_owned();
    let loader = lines.next()?.trim().to_owned();
    Some(NodeBundle {
        folder: folder.to_owned(),
        version,
        loader,
    })
}

async fn make_bundle(
    node: &Path,
    externals: &Path,
    folder: &Path,
) -> Result<NodeBundle, LendError> {
    let version = run(node, &["--version"]).await?.trim().to_owned();
    if major_of(&version).is_none() {
        return Err(LendError::Command {
            program: node.display().to_string(),
            args: "--version".to_owned(),
            why: format!("it printed `{version}`, not a version"),
        });
    }
    let listed = run(Path::new("ldd"), &[&node.to_string_lossy()]).await?;
    let (libraries, loader) =
        libraries(&listed).ok_or_else(|| LendError::Libraries(node.to_owned()))?;
    let missing = missing_libraries(&listed);
    if !missing.is_empty() {
        return Err(LendError::MissingLibraries {
            node: node.to_owned(),
            missing: missing.join(", "),
        });
    }
    let files: Vec<PathBuf> = std::iter::once(node.to_owned())
        .chain(libraries.iter().map(|(_, path)| path.clone()))
        .collect();
    let scanned = tokio::task::spawn_blocking(move || -> Result<Option<PathBuf>, LendError> {
        for file in files {
            if mentions(&file, DISTRO_MODULES.as_bytes()).map_err(io("cannot read", &file))? {
                return Ok(Some(file));
            }
        }
        Ok(None)
    })
    .await;
    match scanned {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(_))) => return Err(LendError::NotSelfContained(node.to_owned())),
        Ok(Err(e)) => return Err(e),
        Err(joined) => {
            return Err(LendError::Io {
                what: "cannot read",
                path: node.to_owned(),
                source: std::io::Error::other(joined),
            })
        }
    }

    tokio::fs::create_dir_all(externals)
        .await
        .map_err(io("cannot create", externals))?;
    let temporary = externals.join(format!(
        ".node-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let made = fill(node, &libraries, &loader, &temporary, &version).await;
    if let Err(e) = made {
        let _ = tokio::fs::remove_dir_all(&temporary).await;
        return Err(e);
    }
    // Another runner may have made it meanwhile: theirs is as good, and ours goes.
    if tokio::fs::rename(&temporary, folder).await.is_err() {
        let _ = tokio::fs::remove_dir_all(&temporary).await;
    }
    read_bundle(folder).await.ok_or_else(|| LendError::Io {
        what: "cannot read the node bundle",
        path: folder.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })
}

/// Copies the node, its libraries and the loader into `folder`, the version file last.
async fn fill(
    node: &Path,
    libraries: &[Library],
    loader: &Library,
    folder: &Path,
    version: &str,
) -> Result<(), LendError> {
    let bin = folder.join("bin");
    let lib = folder.join("lib");
    for dir in [&bin, &lib] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io("cannot create", dir))?;
    }
    link_or_copy(node, &bin.join("node")).await?;
    for (name, path) in libraries.iter().chain(std::iter::once(loader)) {
        link_or_copy(path, &lib.join(name)).await?;
    }
    // The folders open to whatever user a container runs as (the files keep the modes they
    // have on this machine, readable by all).
    for dir in [folder, &bin, &lib] {
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(io("cannot set the mode of", dir))?;
    }
    let record = folder.join(VERSION_FILE);
    tokio::fs::write(&record, format!("{version}\n{}\n", loader.0))
        .await
        .map_err(io("cannot write", &record))
}

/// `to` as a hard link to what `from` points at (no copy on one file system), else a copy.
async fn link_or_copy(from: &Path, to: &Path) -> Result<(), LendError> {
    let real = tokio::fs::canonicalize(from)
        .await
        .map_err(io("cannot resolve", from))?;
    if tokio::fs::hard_link(&real, to).await.is_ok() {
        return Ok(());
    }
    tokio::fs::copy(&real, to)
        .await
        .map(drop)
        .map_err(io("cannot copy", from))
}

/// Whether the file at `path` contains `needle`, read a piece at a time (a node is ~100 MB).
fn mentions(path: &Path, needle: &[u8]) -> std::io::Result<bool> {
    use std::io::Read;
    const PIECE: usize = 1 << 20;
    let mut file = std::fs::File::open(path)?;
    let finder = memchr::memmem::Finder::new(needle);
    // Each piece starts with the last `needle.len() - 1` bytes of the one before, so a match
    // across two pieces is found.
    let keep = needle.len().saturating_sub(1);
    let mut buffer = vec![0; PIECE + keep];
    let mut held = 0;
    loop {
        let read = file.read(&mut buffer[held..])?;
        if read == 0 {
            return Ok(false);
        }
        let filled = held + read;
        if finder.find(&buffer[..filled]).is_some() {
            return Ok(true);
        }
        held = keep.min(filled);
        buffer.copy_within(filled - held..filled, 0);
    }
}

/// A shared library as a program names it (its soname), and where it is on this machine.
type Library = (String, PathBuf);

/// The libraries and the loader `ldd` lists, or `None` when it lists no loader (a static
/// binary, or an answer it does not recognise).
fn libraries(listed: &str) -> Option<(Vec<Library>, Library)> {
    let mut libraries = Vec::new();
    let mut loader = None;
    for line in listed.lines().map(str::trim) {
        if let Some((name, rest)) = line.split_once(" => ") {
            let path = rest.split(" (").next().unwrap_or_default().trim();
            if path.starts_with('/') {
                libraries.push((name.trim().to_owned(), PathBuf::from(path)));
            }
        } else if line.starts_with('/') {
            // The loader: `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = PathBuf::from(line.split(" (").next().unwrap_or_default().trim());
            let name = path.file_name()?.to_string_lossy().into_owned();
            loader = Some((name, path));
        }
    }
    Some((libraries, loader?))
}

/// The libraries `ldd` could not find (`libnode.so.108 => not found`).
fn missing_libraries(listed: &str) -> Vec<&str> {
    listed
        .lines()
        .filter_map(|line| line.trim().split_once(" => "))
        .filter(|(_, rest)| rest.trim().starts_with("not found"))
        .map(|(name, _)| name.trim())
        .collect()
}

async fn run(program: &Path, args: &[&str]) -> Result<String, LendError> {
    let failed = |why: String| LendError::Command {
        program: program.display().to_string(),
        args: args.join(" "),
        why,
    };
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| failed("its output is not text".to_owned()))
}

/// Which node runs a `node{wanted}` action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The image's own, on the job's `PATH`.
    Image,
    /// The one the runner lends.
    Lent,
}

/// Why a job can run no JavaScript action, when its image has no node and the runner lends
/// none (`why`: why it lends none).
pub fn no_node(why: &str) -> String {
    format!(
        "the job's image has no `node` on its PATH, and the runner has none to lend (it lends \
         the `node` on its own PATH): {why}"
    )
}

/// Which node runs a `node{wanted}` action in a container: the image's (`image`, its major
/// version when it has one) or the lent one (`lent`, its major); `None` when there is
/// neither. The exact major first, the image's before the lent one; else the newer of the
/// two, with a notice for the step's log.
pub fn choose(
    wanted: u32,
    image: Option<u32>,
    lent: Option<u32>,
) -> Option<(Choice, Option<String>)> {
    if image == Some(wanted) {
        return Some((Choice::Image, None));
    }
    if lent == Some(wanted) {
        return Some((Choice::Lent, None));
    }
    let (choice, major, whose) = match (image, lent) {
        (Some(mine), Some(theirs)) if theirs > mine => (Choice::Lent, theirs, "the runner's"),
        (Some(mine), _) => (Choice::Image, mine, "the image's"),
        (None, Some(theirs)) => (Choice::Lent, theirs, "the runner's"),
        (None, None) => return None,
    };
    let notice = format!(
        "the action asks for node{wanted}, which this job does not have: it runs with \
         {whose} node {major}"
    );
    Some((choice, Some(notice)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDD: &str = "\tlinux-vdso.so.1 (0x00007fee27cc5000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fee27caf000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fee27a00000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fee2773e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fee27cc7000)
";

    #[test]
    fn a_needle_is_found_anywhere_in_a_file_even_across_pieces() {
        let dir = tempfile::tempdir().expect("temp dir");
        let needle = DISTRO_MODULES.as_bytes();
        // Across the boundary of the first 1 MiB piece, at the start, at the end, and absent.
        let at = |offset: usize| {
            let mut bytes = vec![b'x'; (1 << 20) + 4096];
            bytes[offset..offset + needle.len()].copy_from_slice(needle);
            bytes
        };
        let cases = [
            ("across", at((1 << 20) - 5), true),
            ("start", at(0), true),
            ("end", at((1 << 20) + 4096 - needle.len()), true),
            ("absent", vec![b'x'; (1 << 20) + 4096], false),
            ("short", needle[..needle.len() - 1].to_vec(), false),
        ];
        for (name, bytes, expected) in cases {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).expect("write");
            assert_eq!(mentions(&file, needle).expect("read"), expected, "{name}");
        }
    }

    #[test]
    fn libraries_ldd_cannot_find_are_named() {
        let listed = format!("{LDD}\tlibnode.so.108 => not found\n");
        assert_eq!(missing_libraries(&listed), ["libnode.so.108"]);
        assert!(missing_libraries(LDD).is_empty());
    }

    /// A node that reads modules from this machine (as Debian's does) is refused, saying what
    /// to install; the runner's own node, with that path appended, stands for one.
    #[tokio::test]
    async fn a_node_that_reads_modules_from_the_machine_is_not_lent() {
        let path = std::env::var("PATH").unwrap_or_default();
        let node = find_on_path(&path).expect("the tests need a node on PATH");
        let dir = tempfile::tempdir().expect("temp dir");
        let distro = dir.path().join("node");
        std::fs::copy(&node, &distro).expect("copy node");
        let mut bytes = std::fs::OpenOptions::new()
            .append(true)
            .open(&distro)
            .expect("open");
        std::io::Write::write_all(&mut bytes, DISTRO_MODULES.as_bytes()).expect("append");
        drop(bytes);

        let externals = dir.path().join("externals");
        let refused = bundle(&distro, &externals).await.expect_err("refused");
        assert!(
            matches!(refused, LendError::NotSelfContained(_)),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("official Node.js"),
            "{refused}"
        );
        let left: Vec<_> = std::fs::read_dir(&externals)
            .map(|entries| entries.flatten().collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "nothing is left in externals: {left:?}");

        // The same node as it is bundles.
        let lent = bundle(&node, &externals).await.expect("bundled");
        assert!(lent.major().is_some());
    }

    #[test]
    fn ldd_lists_the_libraries_and_the_loader() {
        let (libraries, loader) = libraries(LDD).expect("listed");
        let names: Vec<&str> = libraries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["libdl.so.2", "libstdc++.so.6", "libc.so.6"]);
        assert_eq!(loader.0, "ld-linux-x86-64.so.2");
        assert_eq!(loader.1, PathBuf::from("/lib64/ld-linux-x86-64.so.2"));
        assert!(super::libraries("\tstatically linked\n").is_none());
    }

    fn bundle_of(version: &str) -> NodeBundle {
        NodeBundle {
            folder: PathBuf::from("/x"),
            version: version.to_owned(),
            loader: "ld.so".to_owned(),
        }
    }

    #[test]
    fn the_exact_major_wins_then_the_newer_with_a_notice() {
        let lent = bundle_of("v20.1.0");
        assert_eq!(lent.argv()[0], "/__e/node20/lib/ld.so");
        assert_eq!(
            lent.argv_at("/__w/_actions/3")[3],
            "/__w/_actions/3/bin/node"
        );
        assert_eq!(choose(18, Some(18), Some(20)), Some((Choice::Image, None)));
        assert_eq!(choose(20, Some(18), Some(20)), Some((Choice::Lent, None)));
        let (newer, notice) = choose(24, Some(18), Some(20)).expect("some");
        assert_eq!(newer, Choice::Lent);
        assert!(notice.expect("notice").contains("the runner's node 20"));
        let (image_newer, notice) = choose(16, Some(22), Some(20)).expect("some");
        assert_eq!(image_newer, Choice::Image);
        assert!(notice.expect("notice").contains("the image's node 22"));
        assert!(choose(20, None, None).is_none());
        assert_eq!(major_of("v20.20.2"), Some(20));
        assert_eq!(major_of("garbage"), None);
    }
}
