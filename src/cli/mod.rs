//! The command line's subcommands besides `serve` and `migrate`: `export` and `import` of
//! the catalogue as JSON Lines (`portable`), and the container probe (`healthcheck`).

pub mod healthcheck;
pub mod portable;
