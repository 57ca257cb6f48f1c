//! The `kuntalaistili` binary: the command line of [`kuntalaistili::cli`].

use std::io::IsTerminal;

fn main() {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    let mut io = kuntalaistili::cli::Io {
        stdin: &mut input,
        interactive,
        out: &mut output,
    };
    let code = match kuntalaistili::cli::run_args(std::env::args_os(), &mut io) {
        Ok(code) => code,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(e) => {
                eprintln!("error: {}", kuntalaistili::cli::error_text(&e));
                1
            }
        },
    };
    std::process::exit(code);
}
