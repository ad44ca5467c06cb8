//! The `gridtwin` binary: parse, execute, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Diagnostics keep their first line whole, so that `file:line:col:
    // message` can be read (and grepped) as one line whatever the width.
    miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }))
    .expect("the report hook is set once, first thing");
    let cli = gridtwin::cli::Cli::parse();
    match gridtwin::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(code)
        }
    }
}
