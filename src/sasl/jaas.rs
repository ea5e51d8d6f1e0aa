//! Reading a JAAS login configuration file, the format ZooKeeper takes its
//! SASL users from:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! A file holds named sections; each section lists login modules, each with a
//! control flag and `key=value` options (values quoted or bare), ended by `;`.
//! Comments are `//`, `/* */` and `#`, as the JDK's parser allows.

use std::path::Path;

/// Why a JAAS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    /// The file could not be read.
    #[error("cannot read JAAS file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not follow the JAAS syntax.
    #[error("JAAS file {path}, line {line}: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line of the offending token.
        line: usize,
        /// What was expected.
        reason: String,
    },
}

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name, e.g. `org.apache.zookeeper.server.auth.DigestLoginModule`.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Options in file order.
    pub options: Vec<(String, String)>,
}

/// One named section (a JAAS "application").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section name, e.g. `Server`.
    pub name: String,
    /// Its login modules.
    pub modules: Vec<LoginModule>,
}

/// A parsed JAAS file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasConfig {
    /// Sections in file order.
    pub sections: Vec<Section>,
}

impl JaasConfig {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, JaasError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read { path: name.clone(), source })?;
        Self::parse(&text, &name)
    }

    /// Parses the text of a file named `path` (for messages).
    pub fn parse(text: &str, path: &str) -> Result<Self, JaasError> {
        let tokens = tokenize(text).map_err(|(line, reason)| JaasError::Syntax { path: path.into(), line, reason })?;
        Parser { tokens, pos: 0 }.file().map_err(|(line, reason)| JaasError::Syntax { path: path.into(), line, reason })
    }

    /// The section called `name`, if any.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// Splits the text into tokens, each with its line.
fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '/' && next == Some('/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = line;
            i += 2;
            loop {
                match chars.get(i) {
                    None => return Err((start, "unterminated /* comment".into())),
                    Some('*') if chars.get(i + 1) == Some(&'/') => {
                        i += 2;
                        break;
                    }
                    Some(ch) => {
                        if *ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
        } else if matches!(c, '{' | '}' | ';' | '=') {
            out.push((line, Tok::Punct(c)));
            i += 1;
        } else if c == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err((start, "unterminated quoted string".into())),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().ok_or((start, "unterminated quoted string".to_string()))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(ch) => {
                        if *ch == '\n' {
                            line += 1;
                        }
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Quoted(s)));
        } else {
            let mut s = String::new();
            while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '{' | '}' | ';' | '=' | '"') {
                if chars[i] == '/' && matches!(chars.get(i + 1), Some('/') | Some('*')) {
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push((line, Tok::Word(s)));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
}

type ParseResult<T> = Result<T, (usize, String)>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn line(&self) -> usize {
        self.tokens.get(self.pos).or(self.tokens.last()).map_or(1, |(l, _)| *l)
    }

    fn next(&mut self, what: &str) -> ParseResult<Tok> {
        let line = self.line();
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone()).ok_or((line, format!("expected {what}, found the end")))?;
        self.pos += 1;
        Ok(t)
    }

    fn punct(&mut self, c: char) -> ParseResult<()> {
        let line = self.line();
        match self.next(&format!("'{c}'"))? {
            Tok::Punct(p) if p == c => Ok(()),
            other => Err((line, format!("expected '{c}', found {other:?}"))),
        }
    }

    fn name(&mut self, what: &str) -> ParseResult<String> {
        let line = self.line();
        match self.next(what)? {
            Tok::Word(w) | Tok::Quoted(w) => Ok(w),
            other => Err((line, format!("expected {what}, found {other:?}"))),
        }
    }

    fn file(mut self) -> ParseResult<JaasConfig> {
        let mut config = JaasConfig::default();
        while self.peek().is_some() {
            let line = self.line();
            let name = self.name("a section name")?;
            if config.section(&name).is_some() {
                return Err((line, format!("section {name} given twice")));
            }
            self.punct('{')?;
            let mut modules = Vec::new();
            while self.peek() != Some(&Tok::Punct('}')) {
                modules.push(self.module()?);
            }
            self.punct('}')?;
            self.punct(';')?;
            config.sections.push(Section { name, modules });
        }
        Ok(config)
    }

    fn module(&mut self) -> ParseResult<LoginModule> {
        let class = self.name("a login module class")?;
        let line = self.line();
        let flag = self.name("a control flag")?;
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.to_ascii_lowercase().as_str()) {
            return Err((line, format!("unknown control flag {flag:?}")));
        }
        let mut options = Vec::new();
        while self.peek() != Some(&Tok::Punct(';')) {
            let key = self.name("an option name")?;
            self.punct('=')?;
            let value = self.name("an option value")?;
            options.push((key, value));
        }
        self.punct(';')?;
        Ok(LoginModule { class, flag, options })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zookeeper_and_kazoo_files() {
        let text = r#"
// kazoo's test harness
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
/* a client section,
   as Kafka-era clients use */
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob" # the user
  password="with \"quote\" and ; inside";
};
QuorumServer { a.B required; c.D optional debug=true; };
"#;
        let c = JaasConfig::parse(text, "jaas.conf").unwrap();
        let server = c.section("Server").unwrap();
        assert_eq!(server.modules.len(), 1);
        assert_eq!(server.modules[0].class, "org.apache.zookeeper.server.auth.DigestLoginModule");
        assert_eq!(server.modules[0].flag, "required");
        assert_eq!(
            server.modules[0].options,
            vec![("user_super".into(), "super_secret".into()), ("user_jaasuser".into(), "jaas_password".into())]
        );
        let client = c.section("Client").unwrap();
        assert_eq!(client.modules[0].options[1].1, "with \"quote\" and ; inside");
        let q = c.section("QuorumServer").unwrap();
        assert_eq!(q.modules.len(), 2);
        assert_eq!(q.modules[1].options, vec![("debug".into(), "true".into())]);
        assert!(c.section("server").is_none(), "section names are case-sensitive");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let bad = [
            ("Server {\n a.B required user_x=\"y\"\n};", 3), // missing ';' after the module
            ("Server {\n a.B mandatory;\n};", 2),            // unknown flag
            ("Server {\n a.B required user_x=\"y;\n};", 2),  // unterminated string
            ("Server {\n a.B required;\n}", 3),              // missing ';' after '}'
            ("Server { a.B required; };\nServer { };", 2),   // section twice
            ("/* open", 1),
        ];
        for (text, line) in bad {
            match JaasConfig::parse(text, "f") {
                Err(JaasError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert_eq!(JaasConfig::parse("", "f").unwrap(), JaasConfig::default());
        assert!(matches!(JaasConfig::load(Path::new("/nonexistent/jaas.conf")), Err(JaasError::Read { .. })));
    }
}
