//! Action repositories made with the real `git`, served by `file://` URLs: what
//! `uses: owner/repo@ref` fetches in the tests.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@localhost",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// A repository `base/owner/repo` holding `files`, committed on `main` and tagged `tag`.
pub fn make_repo(base: &Path, name: &str, files: &[(&str, &str)], tag: &str) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("repo folder");
    git(&dir, &["init", "-q"]);
    for (path, text) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("folders");
        std::fs::write(file, text).expect("file written");
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "action"]);
    git(&dir, &["tag", tag]);
}

/// `acme/greet` (a composite action, tag `v1`) and `acme/node-hello` (a JavaScript action
/// with a `pre` that saves state and a `post`, tag `v2`) under `base`.
pub fn make_actions(base: &Path) {
    make_repo(
        base,
        "acme/greet",
        &[(
            "action.yml",
            "name: greet\ninputs:\n  who:\n    default: world\nruns:\n  using: composite\n  steps:\n    - run: echo \"hello ${{ inputs.who }}\"\n      shell: bash\n",
        )],
        "v1",
    );
    make_repo(
        base,
        "acme/node-hello",
        &[
            (
                "action.yml",
                "name: node hello\ninputs:\n  name:\n    required: true\nruns:\n  using: node20\n  pre: dist/pre.js\n  main: dist/main.js\n  post: dist/post.js\n",
            ),
            (
                "dist/pre.js",
                "console.log(`node pre ${process.env.INPUT_NAME}`);\nrequire('fs').appendFileSync(process.env.GITHUB_STATE, 'greeting=from-pre\\n');\n",
            ),
            (
                "dist/main.js",
                "console.log(`hello from node ${process.env.INPUT_NAME}, state ${process.env.STATE_greeting}`);\n",
            ),
            ("dist/post.js", "console.log('node post');\n"),
        ],
        "v2",
    );
}

/// The steps that use both actions.
pub const STEPS: &str = "      - uses: acme/greet@v1\n        with:\n          who: forge\n      - uses: acme/node-hello@v2\n        with:\n          name: Ann\n";
