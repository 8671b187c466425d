//! The user's editor, for `config edit` and `file edit`.

use std::path::Path;

use anyhow::{Context, bail};

/// The editor the environment asks for.
pub fn from_environment() -> String {
    command(std::env::var("VISUAL").ok(), std::env::var("EDITOR").ok())
}

/// $VISUAL, else $EDITOR, else vi; may hold arguments (`code --wait`), as a shell reads them.
fn command(visual: Option<String>, editor: Option<String>) -> String {
    [visual, editor]
        .into_iter()
        .flatten()
        .find(|command| !command.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Runs the editor through a shell, so `EDITOR="vim -u NONE"` works; the file is `$1`, so its
/// name needs no quoting.
pub async fn run(editor: &str, path: &Path, unchanged: &str) -> anyhow::Result<()> {
    // The shell also gets the Ctrl+C the editor handles (vim's, say), and a non-interactive
    // dash dies of it, leaving the editor behind on the terminal. A trap that does nothing
    // keeps it waiting; unlike an ignored signal, a trap is not inherited by the editor,
    // which still ends on Ctrl+C if it does not handle it.
    //
    // Awaited rather than blocking: the signal driver keeps running, so a Ctrl+C meant for
    // the editor is consumed now and not mistaken later for an answer to our prompt.
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("trap : INT QUIT; {editor} \"$1\""))
        .arg("--")
        .arg(path)
        .status()
        .await
        .context("cannot run the editor through sh")?;
    if !status.success() {
        bail!("the editor ({editor}) failed ({status}); {unchanged}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_is_visual_then_editor_then_vi() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(command(some("code --wait"), some("nano")), "code --wait");
        assert_eq!(command(None, some("nano")), "nano");
        assert_eq!(command(some(""), some("nano")), "nano");
        assert_eq!(command(some(" "), None), "vi");
        assert_eq!(command(None, None), "vi");
    }

    #[tokio::test]
    async fn editor_gets_the_file_as_one_argument_and_may_have_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("with space's.yaml");
        std::fs::write(&path, "config: {}\n").unwrap();
        // An "editor" with arguments of its own, run on a name that needs quoting.
        run("sed -i -e s/{}/x/", &path, "nothing changed").await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "config: x\n");

        let err = run("false", &path, "nothing changed").await.unwrap_err().to_string();
        assert!(err.starts_with("the editor (false) failed (exit status: 1)"), "{err}");
    }
}
