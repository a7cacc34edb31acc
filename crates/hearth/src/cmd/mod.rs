//! One module per subcommand.

pub mod exec;
pub mod expr;
pub mod plan;
pub mod validate;
