//! `replmend --generate KIND`: the man page and shell completions, generated from the clap
//! definition itself (as ripgrep does), so they can never disagree with the options.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, Generate};

/// The man page: the top-level page, then each subcommand's synopsis, description and
/// options as sub-sections, so `man replmend` documents every option of every command.
fn man(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let top = clap_mangen::Man::new(cmd.clone());
    top.render(out)?;
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        writeln!(out, ".SH \"REPLMEND {}\"", name.to_uppercase())?;
        // Built on its own, a subcommand would get an automatic -h for help, which is --host.
        let page = clap_mangen::Man::new(
            sub.clone()
                .disable_help_flag(true)
                .bin_name(format!("replmend {name}")),
        );
        let mut body = Vec::new();
        page.render_synopsis_section(&mut body)?;
        page.render_description_section(&mut body)?;
        page.render_options_section(&mut body)?;
        // The subcommand's own sections become sub-sections of its section.
        let body = String::from_utf8_lossy(&body).replace(".SH ", ".SS ");
        out.write_all(body.as_bytes())?;
    }
    Ok(())
}

pub fn run(kind: Generate) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let shell = match kind {
        Generate::Man => return man(&mut out),
        Generate::CompleteBash => clap_complete::Shell::Bash,
        Generate::CompleteZsh => clap_complete::Shell::Zsh,
        Generate::CompleteFish => clap_complete::Shell::Fish,
        Generate::CompletePowershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut Cli::command(), "replmend", &mut out);
    Ok(())
}
