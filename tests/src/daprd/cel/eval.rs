//! Evaluation of the CEL subset over `{"event": <cloudEvent>}`, with cel-go's semantics where
//! they show: missing keys and unknown identifiers are errors, `&&`/`||` absorb an error on one
//! side when the other decides, numbers compare across int/double, other kinds never equal.

use super::{Expr, Op, Val};

pub(super) fn eval(e: &Expr, event: &Val) -> Result<Val, String> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::List(items) => Val::List(
            items
                .iter()
                .map(|i| eval(i, event))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Ident(id) if id == "event" => event.clone(),
        Expr::Ident(id) => return Err(format!("no such attribute: {id}")),
        Expr::Member(obj, name) => get(&eval(obj, event)?, name)?,
        Expr::Index(obj, idx) => match (eval(obj, event)?, eval(idx, event)?) {
            (m @ Val::Map(_), Val::Str(k)) => get(&m, &k)?,
            (Val::List(l), Val::Int(i)) => usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or_else(|| format!("index out of range: {i}"))?,
            _ => return Err("no such overload for index".into()),
        },
        Expr::Not(x) => match eval(x, event)? {
            Val::Bool(b) => Val::Bool(!b),
            _ => return Err("no such overload for !_".into()),
        },
        Expr::Neg(x) => match eval(x, event)? {
            Val::Int(i) => Val::Int(-i),
            Val::Double(d) => Val::Double(-d),
            _ => return Err("no such overload for -_".into()),
        },
        Expr::Has(m) => match &**m {
            Expr::Member(obj, name) => match eval(obj, event)? {
                Val::Map(p) => Val::Bool(p.iter().any(|(k, _)| k == name)),
                _ => return Err("no such overload for has()".into()),
            },
            _ => return Err("invalid has() argument".into()),
        },
        Expr::Bin(l, Op::Or, r) => match eval(l, event) {
            Ok(Val::Bool(true)) => Val::Bool(true),
            left => match (left, eval(r, event)?) {
                (_, Val::Bool(true)) => Val::Bool(true),
                (Ok(Val::Bool(false)), Val::Bool(false)) => Val::Bool(false),
                (Err(e), _) => return Err(e),
                _ => return Err("no such overload for _||_".into()),
            },
        },
        Expr::Bin(l, Op::And, r) => match eval(l, event) {
            Ok(Val::Bool(false)) => Val::Bool(false),
            left => match (left, eval(r, event)?) {
                (_, Val::Bool(false)) => Val::Bool(false),
                (Ok(Val::Bool(true)), Val::Bool(true)) => Val::Bool(true),
                (Err(e), _) => return Err(e),
                _ => return Err("no such overload for _&&_".into()),
            },
        },
        Expr::Bin(l, op, r) => {
            let (a, b) = (eval(l, event)?, eval(r, event)?);
            match op {
                Op::Eq => Val::Bool(equal(&a, &b)),
                Op::Ne => Val::Bool(!equal(&a, &b)),
                Op::In => match &b {
                    Val::List(items) => Val::Bool(items.iter().any(|i| equal(&a, i))),
                    Val::Map(p) => {
                        Val::Bool(matches!(&a, Val::Str(k) if p.iter().any(|(pk, _)| pk == k)))
                    }
                    _ => return Err("no such overload for @in".into()),
                },
                _ => {
                    let ord = order(&a, &b).ok_or("no such overload for comparison")?;
                    Val::Bool(match op {
                        Op::Lt => ord.is_lt(),
                        Op::Le => ord.is_le(),
                        Op::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    })
                }
            }
        }
        Expr::Call(target, name, args) => {
            let args: Vec<Val> = args
                .iter()
                .map(|a| eval(a, event))
                .collect::<Result<_, _>>()?;
            let target = target.as_ref().map(|t| eval(t, event)).transpose()?;
            call(target, name, &args)?
        }
    })
}

fn get(v: &Val, name: &str) -> Result<Val, String> {
    match v {
        Val::Map(p) => p
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no such key: {name}")),
        _ => Err(format!("no such key: {name}")),
    }
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Double(d) => Some(*d),
        _ => None,
    }
}

/// CEL heterogeneous equality: numbers compare by value, other kinds never equal each other.
fn equal(a: &Val, b: &Val) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn order(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

fn call(target: Option<Val>, name: &str, args: &[Val]) -> Result<Val, String> {
    match (target, name, args) {
        (Some(Val::Str(s)), "startsWith", [Val::Str(x)]) => {
            Ok(Val::Bool(s.starts_with(x.as_str())))
        }
        (Some(Val::Str(s)), "endsWith", [Val::Str(x)]) => Ok(Val::Bool(s.ends_with(x.as_str()))),
        (Some(Val::Str(s)), "contains", [Val::Str(x)]) => Ok(Val::Bool(s.contains(x.as_str()))),
        (None, "size", [Val::Str(s)]) => Ok(Val::Int(s.chars().count() as i64)),
        (None, "size", [Val::List(l)]) => Ok(Val::Int(l.len() as i64)),
        (None, "size", [Val::Map(m)]) => Ok(Val::Int(m.len() as i64)),
        _ => Err(format!(
            "no such overload or function outside the stand-in's CEL subset: {name}"
        )),
    }
}
