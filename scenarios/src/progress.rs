//! A small progress bar on stderr: redrawn in place on a terminal (at most
//! 10 times a second), one line per 10 % otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    started: Instant,
    last_draw: Option<Instant>,
    last_tenth: usize,
    tty: bool,
    enabled: bool,
}

impl Progress {
    pub fn new(label: &str, total: usize, enabled: bool) -> Progress {
        Progress {
            label: label.into(),
            total: total.max(1),
            done: 0,
            started: Instant::now(),
            last_draw: None,
            last_tenth: 0,
            tty: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    /// Records one more step; `status` is shown after the bar.
    pub fn step(&mut self, status: impl FnOnce() -> String) {
        self.done = (self.done + 1).min(self.total);
        if !self.enabled {
            return;
        }
        let finished = self.done == self.total;
        if self.tty {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
            if due || finished {
                self.last_draw = Some(Instant::now());
                let line = self.render(&status());
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{line}");
                if finished {
                    let _ = writeln!(e);
                }
                let _ = e.flush();
            }
        } else {
            let tenth = self.done * 10 / self.total;
            if tenth > self.last_tenth || finished {
                self.last_tenth = tenth;
                eprintln!("{}", self.render(&status()));
            }
        }
    }

    fn render(&self, status: &str) -> String {
        const W: usize = 30;
        let filled = self.done * W / self.total;
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if self.done > 0 {
            elapsed / self.done as f64 * (self.total - self.done) as f64
        } else {
            0.0
        };
        format!(
            "{} [{}{}] {}/{} {:.0}s (eta {:.0}s)  {}",
            self.label,
            "#".repeat(filled),
            "-".repeat(W - filled),
            self.done,
            self.total,
            elapsed,
            eta,
            status
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bar() {
        let mut p = Progress::new("cold", 4, false);
        p.step(String::new);
        p.step(String::new);
        let s = p.render("x");
        assert!(
            s.starts_with("cold [###############---------------] 2/4"),
            "{s}"
        );
        assert!(s.ends_with("x"));
    }
}
