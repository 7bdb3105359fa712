//! Process tests of the `wlm` binary: every subcommand run as a user would run it.

mod anndata;
mod common;
mod configs;
mod data_commands;
mod demo;
mod experiment;
mod flow;
mod landscape;
mod runs;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
mod simulate;
mod sweep;
mod workflow;
