//! Glue for the `wlm` command: argument parsing and subcommands.

/// Runs the `wlm` command with the given arguments (without the program name).
///
/// # Errors
/// Any failure of the subcommand, with context for the user.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let _ = args;
    Ok(())
}
