//! One module per subcommand.

pub mod actions;
pub mod cache_server;
pub mod daemon;
pub mod docker;
pub mod doctor;
pub mod exec;
pub mod exec_run;
pub mod expr;
pub mod generate_config;
pub mod kubernetes;
pub mod plan;
pub mod register;
pub mod validate;
