//! Command grammar of lispctl, vtysh style: every keyword may be shortened
//! to any unambiguous prefix (`sh li ma` is `show lisp map-cache`), `?`
//! lists what may come next, and a mistyped word is answered with the
//! keywords it resembles.

use std::fmt;

/// The commands lispctl understands, one line each, for `?` and `help`.
pub const GRAMMAR: &[(&str, &str)] = &[
    (
        "show lisp site [NAME] [detail] [json]",
        "Map-Server sites and their registrations",
    ),
    (
        "show lisp map-cache [EID] [detail] [json]",
        "ITR map-cache (an address selects its longest match)",
    ),
    ("show lisp database [json]", "ETR mapping database"),
    (
        "show lisp map-resolver [json]",
        "Map-Resolver: Map-Server routes, DDT roots, paths served",
    ),
    ("show lisp referral-cache [json]", "DDT referral cache"),
    ("show lisp statistics [json]", "control plane counters"),
    (
        "show lisp discovery [json]",
        "mapping systems learned from OSPF and BGP",
    ),
    (
        "show lisp msx peers|agreements|subscriptions [json]",
        "LISP-MSX peers, agreements, subscriptions",
    ),
    ("show lisp sync [json]", "ITR map-cache synchronization"),
    (
        "show lisp data-plane statistics [json]",
        "data plane counters",
    ),
    (
        "clear lisp map-cache [PREFIX]",
        "remove map-cache entries (all, or those under PREFIX)",
    ),
    (
        "lig EID [via MR] [json]",
        "resolve EID through a Map-Resolver and show the mapping",
    ),
    (
        "help | ?",
        "this list; `?` after a word lists what may follow",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsxWhat {
    Peers,
    Agreements,
    Subscriptions,
}

impl MsxWhat {
    /// The API's name for it (`ShowMsxRequest.what`).
    pub fn as_str(self) -> &'static str {
        match self {
            MsxWhat::Peers => "peers",
            MsxWhat::Agreements => "agreements",
            MsxWhat::Subscriptions => "subscriptions",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    ShowSites {
        name: Option<String>,
        detail: bool,
    },
    ShowMapCache {
        eid: Option<String>,
        detail: bool,
    },
    ShowDatabase,
    ShowMapResolver,
    ShowReferralCache,
    ShowStatistics,
    ShowDiscovery,
    ShowMsx(MsxWhat),
    ShowSync,
    ShowDataPlane,
    ClearMapCache {
        prefix: Option<String>,
    },
    Lig {
        eid: String,
        via: Option<String>,
    },
    /// `help`, `?`, or a `?` after some words: the matching grammar lines.
    Help(Vec<String>),
}

/// A parsed line: what to do and how to print the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub command: Command,
    pub json: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    /// A word matching nothing; `suggestions` are the keywords it resembles.
    Unknown {
        word: String,
        after: String,
        suggestions: Vec<&'static str>,
    },
    /// A prefix of several keywords.
    Ambiguous {
        word: String,
        candidates: Vec<&'static str>,
    },
    /// The line stops where more is needed; `expected` says what.
    Incomplete {
        line: String,
        expected: Vec<String>,
    },
    /// A word after a complete command.
    Unexpected {
        word: String,
        command: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "% Empty command; type ? for a list"),
            ParseError::Unknown {
                word,
                after,
                suggestions,
            } => {
                let at = if after.is_empty() {
                    String::new()
                } else {
                    format!(" after \"{after}\"")
                };
                write!(f, "% Unknown command \"{word}\"{at}")?;
                if suggestions.is_empty() {
                    write!(f, "; type ? for a list")
                } else {
                    write!(f, "; did you mean: {}?", suggestions.join(", "))
                }
            }
            ParseError::Ambiguous { word, candidates } => {
                write!(
                    f,
                    "% Ambiguous command \"{word}\": {}",
                    candidates.join(", ")
                )
            }
            ParseError::Incomplete { line, expected } => {
                write!(
                    f,
                    "% Incomplete command \"{line}\"; expected {}",
                    expected.join(" | ")
                )
            }
            ParseError::Unexpected { word, command } => {
                write!(f, "% Unexpected \"{word}\" after \"{command}\"")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// One keyword choice point. `preferred` settles a prefix shared with
/// siblings the way IOS does for its most used commands: `ma` is map-cache,
/// not map-resolver.
struct Keywords<'a> {
    words: &'a [&'static str],
    preferred: &'a [&'static str],
}

const TOP: Keywords<'static> = Keywords {
    words: &["show", "clear", "lig", "help"],
    preferred: &[],
};
const LISP: Keywords<'static> = Keywords {
    words: &["lisp"],
    preferred: &[],
};
const SHOW_LISP: Keywords<'static> = Keywords {
    words: &[
        "site",
        "map-cache",
        "database",
        "map-resolver",
        "referral-cache",
        "statistics",
        "discovery",
        "msx",
        "sync",
        "data-plane",
    ],
    preferred: &["map-cache"],
};
const MSX: Keywords<'static> = Keywords {
    words: &["peers", "agreements", "subscriptions"],
    preferred: &[],
};
const DATA_PLANE: Keywords<'static> = Keywords {
    words: &["statistics"],
    preferred: &[],
};
const CLEAR_LISP: Keywords<'static> = Keywords {
    words: &["map-cache"],
    preferred: &[],
};

/// Resolves `word` against `kw`: exact match, else the unique prefix match,
/// else the preferred one among several.
fn pick(kw: &Keywords, word: &str, after: &[&str]) -> Result<&'static str, ParseError> {
    let word_lc = word.to_ascii_lowercase();
    if let Some(w) = kw.words.iter().find(|w| **w == word_lc) {
        return Ok(w);
    }
    let matches: Vec<&'static str> = kw
        .words
        .iter()
        .copied()
        .filter(|w| w.starts_with(&word_lc))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(ParseError::Unknown {
            word: word.to_string(),
            after: after.join(" "),
            suggestions: resembling(&word_lc, kw.words),
        }),
        several => {
            let preferred: Vec<_> = several
                .iter()
                .filter(|w| kw.preferred.contains(w))
                .collect();
            match preferred.as_slice() {
                [one] => Ok(one),
                _ => Err(ParseError::Ambiguous {
                    word: word.to_string(),
                    candidates: several.to_vec(),
                }),
            }
        }
    }
}

/// Keywords within a small edit distance of `word` (typos), or sharing its
/// first letter when nothing is that close.
fn resembling(word: &str, words: &[&'static str]) -> Vec<&'static str> {
    let close: Vec<_> = words
        .iter()
        .copied()
        .filter(|w| {
            let head = &w[..w.len().min(word.len())];
            edit_distance(word, w) <= 2 || (word.len() >= 3 && edit_distance(word, head) <= 1)
        })
        .collect();
    if !close.is_empty() {
        return close;
    }
    words
        .iter()
        .copied()
        .filter(|w| w.chars().next() == word.chars().next())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Splits a line into words. A trailing `?` glued to a word (`sh li m?`)
/// becomes its own word, as in vtysh.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in line.split_whitespace() {
        match w.strip_suffix('?') {
            Some(head) if !head.is_empty() => {
                out.push(head.to_string());
                out.push("?".to_string());
            }
            _ => out.push(w.to_string()),
        }
    }
    out
}

/// Parses one command line.
pub fn parse_line(line: &str) -> Result<Parsed, ParseError> {
    let words = words(line);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    parse(&words)
}

/// Parses a command given as words (`lispctl sh li ma` arrives this way).
pub fn parse(words: &[&str]) -> Result<Parsed, ParseError> {
    if words.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Walker {
        words,
        pos: 0,
        path: Vec::new(),
    };
    let plain = |command| {
        Ok(Parsed {
            command,
            json: false,
        })
    };
    match p.keyword(&TOP)? {
        Step::Help(h) => plain(Command::Help(h)),
        Step::Word("help") => {
            p.tail(&[], None, &[])?;
            plain(Command::Help(help_lines("")))
        }
        Step::Word("lig") => {
            let t = p.tail(&["json"], Some("EID"), &[("via", "MR")])?;
            if let Some(h) = t.help {
                return plain(Command::Help(h));
            }
            let Some(eid) = t.positional else {
                return Err(p.incomplete(&["EID".to_string()]));
            };
            Ok(Parsed {
                command: Command::Lig {
                    eid,
                    via: t.valued.into_iter().next().flatten(),
                },
                json: t.flags[0],
            })
        }
        Step::Word("clear") => {
            if let Step::Help(h) = p.keyword(&LISP)? {
                return plain(Command::Help(h));
            }
            if let Step::Help(h) = p.keyword(&CLEAR_LISP)? {
                return plain(Command::Help(h));
            }
            let t = p.tail(&[], Some("PREFIX"), &[])?;
            if let Some(h) = t.help {
                return plain(Command::Help(h));
            }
            plain(Command::ClearMapCache {
                prefix: t.positional,
            })
        }
        Step::Word(_show) => {
            if let Step::Help(h) = p.keyword(&LISP)? {
                return plain(Command::Help(h));
            }
            let what = match p.keyword(&SHOW_LISP)? {
                Step::Help(h) => return plain(Command::Help(h)),
                Step::Word(w) => w,
            };
            let (command, t) = match what {
                "site" => {
                    let t = p.tail(&["detail", "json"], Some("NAME"), &[])?;
                    let c = Command::ShowSites {
                        name: t.positional.clone(),
                        detail: t.flags[0],
                    };
                    (c, t)
                }
                "map-cache" => {
                    let t = p.tail(&["detail", "json"], Some("EID"), &[])?;
                    let c = Command::ShowMapCache {
                        eid: t.positional.clone(),
                        detail: t.flags[0],
                    };
                    (c, t)
                }
                "msx" => {
                    let which = match p.keyword(&MSX)? {
                        Step::Help(h) => return plain(Command::Help(h)),
                        Step::Word("peers") => MsxWhat::Peers,
                        Step::Word("agreements") => MsxWhat::Agreements,
                        Step::Word(_) => MsxWhat::Subscriptions,
                    };
                    (Command::ShowMsx(which), p.tail(&["json"], None, &[])?)
                }
                "data-plane" => {
                    if let Step::Help(h) = p.keyword(&DATA_PLANE)? {
                        return plain(Command::Help(h));
                    }
                    (Command::ShowDataPlane, p.tail(&["json"], None, &[])?)
                }
                other => {
                    let c = match other {
                        "database" => Command::ShowDatabase,
                        "map-resolver" => Command::ShowMapResolver,
                        "referral-cache" => Command::ShowReferralCache,
                        "statistics" => Command::ShowStatistics,
                        "discovery" => Command::ShowDiscovery,
                        _ => Command::ShowSync,
                    };
                    (c, p.tail(&["json"], None, &[])?)
                }
            };
            if let Some(h) = t.help {
                return plain(Command::Help(h));
            }
            let json = t.flags.last().copied().unwrap_or(false);
            Ok(Parsed { command, json })
        }
    }
}

enum Step {
    Word(&'static str),
    Help(Vec<String>),
}

/// What follows the keywords: flags (`detail`, `json`), at most one
/// positional argument, and `keyword VALUE` pairs (`via MR`).
struct Tail {
    /// Indexed like the `flags` argument of [`Walker::tail`].
    flags: Vec<bool>,
    positional: Option<String>,
    /// Values of the `valued` keywords of [`Walker::tail`], in its order.
    valued: Vec<Option<String>>,
    help: Option<Vec<String>>,
}

struct Walker<'a> {
    words: &'a [&'a str],
    pos: usize,
    /// Canonical keywords consumed so far.
    path: Vec<&'static str>,
}

impl Walker<'_> {
    fn keyword(&mut self, kw: &Keywords) -> Result<Step, ParseError> {
        let Some(word) = self.words.get(self.pos) else {
            return Err(
                self.incomplete(&kw.words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
            );
        };
        if *word == "?" {
            return Ok(Step::Help(help_lines(&self.path.join(" "))));
        }
        let w = pick(kw, word, &self.path)?;
        self.pos += 1;
        self.path.push(w);
        Ok(Step::Word(w))
    }

    fn incomplete(&self, expected: &[String]) -> ParseError {
        ParseError::Incomplete {
            line: self.words[..self.pos].join(" "),
            expected: expected.to_vec(),
        }
    }

    /// Parses the rest of the line. A word that abbreviates a flag or a
    /// valued keyword is taken as that keyword, anything else as the
    /// positional argument: EIDs and site names rarely spell `detail`.
    fn tail(
        &mut self,
        flags: &'static [&'static str],
        positional: Option<&'static str>,
        valued: &'static [(&'static str, &'static str)],
    ) -> Result<Tail, ParseError> {
        let mut t = Tail {
            flags: vec![false; flags.len()],
            positional: None,
            valued: vec![None; valued.len()],
            help: None,
        };
        let keywords: Vec<&'static str> = flags
            .iter()
            .copied()
            .chain(valued.iter().map(|(k, _)| *k))
            .collect();
        let kw = Keywords {
            words: &keywords,
            preferred: &[],
        };
        while let Some(word) = self.words.get(self.pos).copied() {
            self.pos += 1;
            if word == "?" {
                let mut lines = help_lines(&self.path.join(" "));
                if lines.is_empty() {
                    lines.push("<cr>".to_string());
                }
                t.help = Some(lines);
                return Ok(t);
            }
            let as_keyword = if kw.words.is_empty() {
                None
            } else {
                pick(&kw, word, &[]).ok()
            };
            let flag = as_keyword.and_then(|k| flags.iter().position(|f| *f == k));
            match (as_keyword, flag) {
                (Some(_), Some(i)) => t.flags[i] = true,
                (Some(k), None) => {
                    let i = valued.iter().position(|v| v.0 == k).unwrap_or_default();
                    let Some(value) = self.words.get(self.pos).filter(|v| **v != "?") else {
                        return Err(self.incomplete(&[valued[i].1.to_string()]));
                    };
                    self.pos += 1;
                    t.valued[i] = Some((*value).to_string());
                }
                (None, _) if positional.is_some() && t.positional.is_none() => {
                    t.positional = Some(word.to_string());
                }
                (None, _) => {
                    return Err(ParseError::Unexpected {
                        word: word.to_string(),
                        command: self.path.join(" "),
                    });
                }
            }
        }
        Ok(t)
    }
}

/// Grammar lines starting with the canonical words `prefix` (all when empty).
pub fn help_lines(prefix: &str) -> Vec<String> {
    let width = GRAMMAR.iter().map(|(g, _)| g.len()).max().unwrap_or(0);
    GRAMMAR
        .iter()
        .filter(|(g, _)| prefix.is_empty() || *g == prefix || g.starts_with(&format!("{prefix} ")))
        .map(|(g, h)| format!("{g:<width$}  {h}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Parsed {
        parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn cmd(line: &str) -> Command {
        ok(line).command
    }

    #[test]
    fn full_words() {
        assert_eq!(
            cmd("show lisp map-cache"),
            Command::ShowMapCache {
                eid: None,
                detail: false
            }
        );
        assert_eq!(cmd("show lisp database"), Command::ShowDatabase);
        assert_eq!(cmd("show lisp map-resolver"), Command::ShowMapResolver);
        assert_eq!(cmd("show lisp referral-cache"), Command::ShowReferralCache);
        assert_eq!(cmd("show lisp statistics"), Command::ShowStatistics);
        assert_eq!(cmd("show lisp discovery"), Command::ShowDiscovery);
        assert_eq!(cmd("show lisp sync"), Command::ShowSync);
        assert_eq!(
            cmd("show lisp data-plane statistics"),
            Command::ShowDataPlane
        );
        assert_eq!(
            cmd("show lisp msx agreements"),
            Command::ShowMsx(MsxWhat::Agreements)
        );
        assert_eq!(
            cmd("clear lisp map-cache"),
            Command::ClearMapCache { prefix: None }
        );
    }

    #[test]
    fn abbreviations() {
        assert_eq!(cmd("sh li ma"), cmd("show lisp map-cache"));
        assert_eq!(cmd("sh li map-r"), Command::ShowMapResolver);
        assert_eq!(cmd("sh li si"), cmd("show lisp site"));
        assert_eq!(cmd("sh li st"), Command::ShowStatistics);
        assert_eq!(cmd("sh li sy"), Command::ShowSync);
        assert_eq!(cmd("sh li data- st"), Command::ShowDataPlane);
        assert_eq!(cmd("sh li datab"), Command::ShowDatabase);
        assert_eq!(cmd("sh li di"), Command::ShowDiscovery);
        assert_eq!(cmd("sh li r"), Command::ShowReferralCache);
        assert_eq!(cmd("s l ms p"), Command::ShowMsx(MsxWhat::Peers));
        assert_eq!(
            cmd("sh li msx sub"),
            Command::ShowMsx(MsxWhat::Subscriptions)
        );
        assert_eq!(
            cmd("cl li m 192.0.2.0/24"),
            Command::ClearMapCache {
                prefix: Some("192.0.2.0/24".into())
            }
        );
        assert_eq!(cmd("SHOW LISP MAP-CACHE"), cmd("show lisp map-cache"));
    }

    #[test]
    fn ambiguity() {
        assert_eq!(
            parse_line("sh li s").unwrap_err(),
            ParseError::Ambiguous {
                word: "s".into(),
                candidates: vec!["site", "statistics", "sync"]
            }
        );
        assert!(matches!(
            parse_line("sh li data st").unwrap_err(),
            ParseError::Ambiguous { .. }
        ));
        let e = parse_line("sh li d").unwrap_err();
        assert_eq!(
            e.to_string(),
            "% Ambiguous command \"d\": database, discovery, data-plane"
        );
        // One of several prefix matches is preferred, like IOS.
        assert_eq!(
            cmd("sh li m"),
            Command::ShowMapCache {
                eid: None,
                detail: false
            }
        );
    }

    #[test]
    fn unknown_words_suggest() {
        let e = parse_line("show lisp map-cahce").unwrap_err();
        assert_eq!(
            e,
            ParseError::Unknown {
                word: "map-cahce".into(),
                after: "show lisp".into(),
                suggestions: vec!["map-cache"],
            }
        );
        assert_eq!(
            e.to_string(),
            "% Unknown command \"map-cahce\" after \"show lisp\"; did you mean: map-cache?"
        );
        let e = parse_line("shwo lisp site").unwrap_err();
        assert_eq!(
            e.to_string(),
            "% Unknown command \"shwo\"; did you mean: show?"
        );
        let e = parse_line("sh li stats").unwrap_err();
        assert!(e.to_string().contains("statistics"), "{e}");
        let e = parse_line("frobnicate").unwrap_err();
        assert_eq!(
            e.to_string(),
            "% Unknown command \"frobnicate\"; type ? for a list"
        );
    }

    #[test]
    fn json_and_detail_flags() {
        let p = ok("sh li ma detail json");
        assert!(p.json);
        assert_eq!(
            p.command,
            Command::ShowMapCache {
                eid: None,
                detail: true
            }
        );
        let p = ok("sh li ma j");
        assert!(p.json);
        let p = ok("sh li st json");
        assert!(p.json);
        assert_eq!(p.command, Command::ShowStatistics);
        let p = ok("sh li data-p st js");
        assert!(p.json);
        assert!(!ok("sh li ma").json);
        assert!(ok("sh li msx ag json").json);
    }

    #[test]
    fn arguments() {
        assert_eq!(
            cmd("sh li ma 192.0.2.1 det"),
            Command::ShowMapCache {
                eid: Some("192.0.2.1".into()),
                detail: true
            }
        );
        assert_eq!(
            cmd("show lisp site branch-a detail"),
            Command::ShowSites {
                name: Some("branch-a".into()),
                detail: true
            }
        );
        let p = ok("lig 198.51.100.7 via 192.0.2.1 json");
        assert_eq!(
            p.command,
            Command::Lig {
                eid: "198.51.100.7".into(),
                via: Some("192.0.2.1".into())
            }
        );
        assert!(p.json);
        assert_eq!(
            cmd("lig [7]2001:db8::1"),
            Command::Lig {
                eid: "[7]2001:db8::1".into(),
                via: None
            }
        );
    }

    #[test]
    fn incomplete_and_extra_words() {
        assert_eq!(
            parse_line("lig").unwrap_err().to_string(),
            "% Incomplete command \"lig\"; expected EID"
        );
        assert_eq!(
            parse_line("lig 192.0.2.1 via").unwrap_err().to_string(),
            "% Incomplete command \"lig 192.0.2.1 via\"; expected MR"
        );
        assert!(matches!(
            parse_line("show lisp").unwrap_err(),
            ParseError::Incomplete { .. }
        ));
        assert!(matches!(
            parse_line("show lisp msx").unwrap_err(),
            ParseError::Incomplete { .. }
        ));
        assert_eq!(
            parse_line("sh li st 10.0.0.1").unwrap_err().to_string(),
            "% Unexpected \"10.0.0.1\" after \"show lisp statistics\""
        );
        assert_eq!(
            parse_line("sh li ma 10.0.0.1 10.0.0.2").unwrap_err(),
            ParseError::Unexpected {
                word: "10.0.0.2".into(),
                command: "show lisp map-cache".into()
            }
        );
        assert_eq!(parse_line("   ").unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn help() {
        let Command::Help(all) = cmd("?") else {
            panic!()
        };
        assert_eq!(all.len(), GRAMMAR.len());
        assert_eq!(cmd("help"), Command::Help(all));
        let Command::Help(msx) = cmd("sh li msx ?") else {
            panic!()
        };
        assert_eq!(msx.len(), 1);
        assert!(msx[0].starts_with("show lisp msx peers|agreements|subscriptions [json]"));
        let Command::Help(show) = cmd("sh li?") else {
            panic!()
        };
        assert_eq!(show.len(), 10);
        let Command::Help(clear) = cmd("clear ?") else {
            panic!()
        };
        assert_eq!(clear.len(), 1);
        let Command::Help(tail) = cmd("sh li ma ?") else {
            panic!()
        };
        assert!(tail[0].starts_with("show lisp map-cache [EID] [detail] [json]"));
    }
}
