//! Command lines as documentation shows them: split into words as a shell
//! would, and `mqttbridge pocketscion` run as its own process, the local
//! SCION network those command lines are tried on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt;

use super::bounded;

/// Splits `line` into words as `sh` does for what documentation uses:
/// blanks separate words, single and double quotes group, a `#` starting a
/// word begins a comment.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '#') if word.is_none() => break,
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in {line:?}");
    words.extend(word);
    words
}

/// The commands in a shell snippet: continuation lines (`\` at the end)
/// joined, comments and blank lines left out.
pub fn shell_commands(snippet: &str) -> Vec<Vec<String>> {
    let joined = snippet.replace("\\\n", " ");
    joined
        .lines()
        .map(shell_words)
        .filter(|words| !words.is_empty())
        .collect()
}

/// `mqttbridge pocketscion` running until dropped, with the endhost API of
/// each AS it printed.
pub struct Pocketscion {
    _process: tokio::process::Child,
    /// Endhost API URL by ISD-AS, in ISD-AS order.
    pub endhost_apis: BTreeMap<String, url::Url>,
}

impl Pocketscion {
    /// Starts `mqttbridge pocketscion --topology TOPOLOGY` with a token file
    /// of its own for each of `tokens`, and waits for `ases` endhost lines.
    pub async fn start(topology: &str, tokens: &[PathBuf], ases: usize) -> Pocketscion {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"));
        command.args(["pocketscion", "--topology", topology]);
        for token in tokens {
            command.arg("--snap-token-file").arg(token);
        }
        let mut process = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let mut endhost_apis = BTreeMap::new();
        while endhost_apis.len() < ases {
            let line = bounded("endhost-api line", lines.next_line())
                .await
                .unwrap()
                .expect("pocketscion prints its endhost APIs");
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "`endhost-api ISD-AS URL`: {line}");
            assert_eq!(fields[0], "endhost-api");
            endhost_apis.insert(fields[1].to_string(), fields[2].parse().unwrap());
        }
        Pocketscion {
            _process: process,
            endhost_apis,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_sh_splits_them() {
        assert_eq!(
            shell_words(r#"pub -F '%t %p' -m '{"t":20}' "a b"c  # note"#),
            ["pub", "-F", "%t %p", "-m", r#"{"t":20}"#, "a bc"]
        );
        assert_eq!(shell_words("-m ''"), ["-m", ""]);
        assert_eq!(
            shell_commands("# only a comment\na \\\n   b\n\nc"),
            [vec!["a", "b"], vec!["c"]]
        );
    }
}
