//! Calling a node's REST API from a test, through `curl` (as an operator would; no HTTP
//! client crate in the tests' dependencies): JSON in, status and JSON out, and a session
//! logged in as a user.

use std::process::Command;

/// What went wrong calling the API (not an HTTP error status: that is returned).
#[derive(Debug)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Runs `curl` with `args` (10 s at most) and gives the status and the body as JSON
/// (`Null` when the body is empty or not JSON).
pub fn curl(args: &[&str]) -> Result<(u16, serde_json::Value), HttpError> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .map_err(|e| HttpError(format!("running curl: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    let code = code.trim().parse().map_err(|_| {
        HttpError(format!(
            "curl {args:?}: no status; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    Ok((
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    ))
}

/// A user's session with one node's API (`base` is `http://host:port`).
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    auth: String,
}

impl Api {
    /// Logs in with `POST /api/v1/auth/token`.
    pub fn login(base: &str, user: &str, password: &str) -> Result<Self, HttpError> {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let (code, token) = curl(&[
            "-X",
            "POST",
            &format!("{base}/api/v1/auth/token"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])?;
        let access = token
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|_| code == 200)
            .ok_or_else(|| HttpError(format!("login as {user}: {code} {token}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            auth: format!("Authorization: Bearer {access}"),
        })
    }

    /// `GET {base}{path}`.
    pub fn get(&self, path: &str) -> Result<(u16, serde_json::Value), HttpError> {
        curl(&["-H", &self.auth, &format!("{}{path}", self.base)])
    }

    /// `POST {base}{path}` with a JSON body.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value), HttpError> {
        curl(&[
            "-X",
            "POST",
            &format!("{}{path}", self.base),
            "-H",
            &self.auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ])
    }
}

/// The base URL a node prints in its `Web UI: open http://…` line.
pub fn base_from_ui_line(line: &str) -> Option<String> {
    line.strip_prefix("Web UI: open ")?
        .split_whitespace()
        .next()
        .map(|u| u.trim_end_matches('/').to_string())
}
