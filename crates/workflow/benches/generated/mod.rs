//! The 200-job workflow the `plan` benchmark and the `profile_plan` example load: generated in
//! the styles real ones use: anchors on the first job's values reused by the others, `needs`
//! fanning in from earlier jobs, `if:` conditions, env, multi-line `run:` scripts, and every
//! tenth job with a matrix (include and exclude) and `runs-on` from it.

/// The generated workflow: `jobs` jobs of five steps each.
pub fn workflow(jobs: usize) -> String {
    let mut s = String::from(
        "name: Big pipeline
on:
  push:
    branches: [main, 'release/**']
  pull_request:
    types: [opened, synchronize]
env:
  CARGO_TERM_COLOR: always
  RUST_BACKTRACE: 1
defaults:
  run:
    shell: bash
jobs:
",
    );
    for i in 0..jobs {
        s.push_str(&format!("  job-{i}:\n"));
        if i % 10 == 5 {
            s.push_str(&format!(
                "    name: Test ${{{{ matrix.os }}}} / ${{{{ matrix.rust }}}} ({i})
    strategy:
      fail-fast: false
      matrix:
        os: [linux, macos, windows]
        rust: [stable, beta, '1.80']
        exclude:
          - os: windows
            rust: beta
        include:
          - os: linux
            rust: nightly
            experimental: true
    runs-on: ${{{{ matrix.os }}}}
"
            ));
        } else if i == 0 {
            s.push_str(
                "    runs-on: &runner [self-hosted, linux]\n    timeout-minutes: &timeout 30\n",
            );
        } else {
            s.push_str("    runs-on: *runner\n    timeout-minutes: *timeout\n");
        }
        if i > 0 {
            let needs: Vec<String> = [i - 1, i / 2, i / 3]
                .iter()
                .filter(|&&n| n < i)
                .map(|n| format!("job-{n}"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            s.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
        s.push_str(&format!(
            "    if: github.event_name == 'push' || contains(github.event.pull_request.labels.*.name, 'full-ci')
    env:
      JOB_INDEX: {i}
      TARGET: ${{{{ github.ref_name }}}}-{i}
    outputs:
      artifact: ${{{{ steps.build.outputs.artifact }}}}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: Cache
        uses: actions/cache@v4
        with:
          path: ~/.cargo
          key: cargo-${{{{ hashFiles('**/Cargo.lock') }}}}
      - id: build
        name: Build {i}
        run: |
          set -e
          cargo build --release --bin part-{i}
          echo \"artifact=part-{i}\" >> \"$GITHUB_OUTPUT\"
      - name: Test
        if: ${{{{ success() && !cancelled() }}}}
        run: cargo test --bin part-{i} -- --nocapture
        continue-on-error: ${{{{ matrix.experimental == true }}}}
      - name: Report
        if: always()
        run: echo \"done with ${{{{ env.JOB_INDEX }}}} on ${{{{ runner.os }}}}\"
"
        ));
    }
    s
}
