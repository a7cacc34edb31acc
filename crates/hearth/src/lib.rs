//! The `hearth` command line: one module per subcommand under [`cmd`], each its flags (clap)
//! and the wiring from them to `hearth-runner`. A library as well as the binary's body, so that
//! tests parse and run subcommands in-process, on backends of their choosing.

pub mod cmd;
