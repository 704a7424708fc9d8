//! lispctl: vtysh-style CLI of lisp-agent. Everything lives in
//! `lisp_agent::cli` so that it is unit-tested with the library.

fn main() -> std::process::ExitCode {
    lisp_agent::cli::main()
}
