//! A small subset of CEL for subscription routing rules (dapr-contract.md §1 "Routes").
//!
//! daprd compiles each rule's `match` with cel-go over `{"event": <cloudEvent map>}`; a rule
//! that does not compile makes the whole `/dapr/subscribe` answer fail, and an evaluation error
//! at delivery time is a routing error (DLQ if set, else retried by the component).
//!
//! Supported here: literals (strings with `"` or `'`, ints, doubles, `true`, `false`, `null`,
//! lists), member access `a.b` and `a["b"]`, `!`, unary `-`, `==` `!=` `<` `<=` `>` `>=`, `in`,
//! `&&`, `||`, parentheses, `has(x.y)`, `size(x)`, and the string methods `startsWith`,
//! `endsWith`, `contains`. Anything else is reported as a compile error, which is what cel-go
//! does for syntax errors; valid CEL outside this subset is a known gap of the stand-in.
//! Like daprd, an unknown identifier compiles (daprd declares every identifier as `any`) but
//! fails at evaluation.

mod eval;

use super::gojson::{GoValue, dedup_last, go_float};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Lit(Val),
    List(Vec<Expr>),
    Ident(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
    Has(Box<Expr>),
    Call(Option<Box<Expr>>, String, Vec<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// A runtime value. Event numbers are Go float64s, so they arrive as `Double`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    List(Vec<Val>),
    Map(Vec<(String, Val)>),
}

impl Val {
    pub(crate) fn from_go(v: &GoValue) -> Val {
        match v {
            GoValue::Null => Val::Null,
            GoValue::Bool(b) => Val::Bool(*b),
            GoValue::Number(n) => Val::Double(go_float(n).unwrap_or(f64::NAN)),
            GoValue::String(s) => Val::Str(s.clone()),
            GoValue::Array(items) => Val::List(items.iter().map(Val::from_go).collect()),
            GoValue::Map(p) | GoValue::Struct(p) => Val::Map(
                dedup_last(p)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Val::from_go(v)))
                    .collect(),
            ),
        }
    }
}

/// Compile a `match` expression.
pub(crate) fn compile(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    let mut p = P { t: toks, i: 0 };
    let e = p.or()?;
    if p.i < p.t.len() {
        return Err(format!(
            "ERROR: <input>: Syntax error: unexpected {:?}",
            p.t[p.i]
        ));
    }
    Ok(e)
}

/// Evaluate against `{"event": event}`; the result must be a bool.
pub(crate) fn eval_bool(e: &Expr, event: &GoValue) -> Result<bool, String> {
    let env = Val::from_go(event);
    match eval::eval(e, &env)? {
        Val::Bool(b) => Ok(b),
        other => Err(format!(
            "the result of match expression was not a boolean: {other:?}"
        )),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Id(String),
    Str(String),
    Int(i64),
    Dbl(f64),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    const SYMS: [&str; 17] = [
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "-", ".", ",", "(", ")", "[", "]", "?",
    ];
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err("Syntax error: unterminated string".into()),
                    Some(&q) if q == ch => break,
                    Some('\\') => {
                        i += 1;
                        match c.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&o) => s.push(o),
                            None => return Err("Syntax error: bad escape".into()),
                        }
                    }
                    Some(&o) => s.push(o),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
            let lit: String = c[start..i].iter().collect();
            let lit = lit.strip_suffix('u').unwrap_or(&lit).to_string();
            out.push(match lit.parse::<i64>() {
                Ok(n) => Tok::Int(n),
                Err(_) => Tok::Dbl(lit.parse().map_err(|_| format!("bad number {lit}"))?),
            });
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Id(c[start..i].iter().collect()));
        } else {
            let rest: String = c[i..c.len().min(i + 2)].iter().collect();
            let sym = SYMS.iter().find(|s| rest.starts_with(**s)).ok_or_else(|| {
                format!("ERROR: <input>: Syntax error: token recognition error at: '{ch}'")
            })?;
            if *sym == "?" {
                return Err("conditional expressions are outside the stand-in's CEL subset".into());
            }
            i += sym.chars().count();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn eat(&mut self, s: &str) -> bool {
        if matches!(self.t.get(self.i), Some(Tok::Sym(x)) if *x == s) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(format!("Syntax error: expected '{s}'"))
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            l = Expr::Bin(Box::new(l), Op::Or, Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.rel()?;
        while self.eat("&&") {
            l = Expr::Bin(Box::new(l), Op::And, Box::new(self.rel()?));
        }
        Ok(l)
    }
    fn rel(&mut self) -> Result<Expr, String> {
        let l = self.unary()?;
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (s, op) in ops {
            if self.eat(s) {
                return Ok(Expr::Bin(Box::new(l), op, Box::new(self.unary()?)));
            }
        }
        if matches!(self.t.get(self.i), Some(Tok::Id(x)) if x == "in") {
            self.i += 1;
            return Ok(Expr::Bin(Box::new(l), Op::In, Box::new(self.unary()?)));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }
    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.or()?);
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Id(name)) = self.t.get(self.i).cloned() else {
                    return Err("Syntax error: expected field name".into());
                };
                self.i += 1;
                e = if self.eat("(") {
                    Expr::Call(Some(Box::new(e)), name, self.args()?)
                } else {
                    Expr::Member(Box::new(e), name)
                };
            } else if self.eat("[") {
                let idx = self.or()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let Some(t) = self.t.get(self.i).cloned() else {
            return Err("Syntax error: unexpected end of input".into());
        };
        self.i += 1;
        Ok(match t {
            Tok::Str(s) => Expr::Lit(Val::Str(s)),
            Tok::Int(n) => Expr::Lit(Val::Int(n)),
            Tok::Dbl(d) => Expr::Lit(Val::Double(d)),
            Tok::Id(id) => match id.as_str() {
                "true" => Expr::Lit(Val::Bool(true)),
                "false" => Expr::Lit(Val::Bool(false)),
                "null" => Expr::Lit(Val::Null),
                "has" if self.eat("(") => {
                    let arg = self.or()?;
                    self.expect(")")?;
                    if !matches!(arg, Expr::Member(..)) {
                        return Err("invalid argument to has() macro".into());
                    }
                    Expr::Has(Box::new(arg))
                }
                _ if self.eat("(") => Expr::Call(None, id, self.args()?),
                _ => Expr::Ident(id),
            },
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")")?;
                e
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Expr::List(items)
            }
            Tok::Sym(s) => return Err(format!("Syntax error: mismatched input '{s}'")),
        })
    }
}
