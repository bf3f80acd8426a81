//! Precision plans: which layers run in int8, fp16 or fp32.
//!
//! A plan is a default precision and an ordered list of rules `pattern = precision`; the
//! last rule whose glob matches a layer name decides it. Globs: `*` matches any run of
//! characters (dots included), `?` exactly one, anything else itself. Resolving a plan
//! against a model's layer names fails on a required rule that matches no layer, which
//! catches typos. [`PrecisionPlan::default`] is int8 everywhere except attention layers
//! (`*attention*`, `*attn*`, as optional rules) in fp16; a plan read from a file has exactly
//! the rules it lists.

use crate::error::{QuantError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Numeric precision of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// int8 weights and activations, fixed-point requantization.
    Int8,
    /// f16 storage, f32 compute with f16 rounding (see `fp16`).
    Fp16,
    /// Plain f32.
    Fp32,
}

impl FromStr for Precision {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "int8" => Ok(Precision::Int8),
            "fp16" => Ok(Precision::Fp16),
            "fp32" => Ok(Precision::Fp32),
            other => Err(QuantError::Plan(format!(
                "unknown precision `{other}` (expected int8, fp16 or fp32)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Int8 => "int8",
            Precision::Fp16 => "fp16",
            Precision::Fp32 => "fp32",
        })
    }
}

/// One `pattern = precision` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRule {
    /// Glob over layer names, e.g. `backbone_2d.blocks.2.*`.
    pub pattern: String,
    /// Precision of the matching layers.
    pub precision: Precision,
    /// When true, matching no layer is not an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl FromStr for PlanRule {
    type Err = QuantError;
    /// Parses `pattern=precision` (the command-line form).
    fn from_str(s: &str) -> Result<Self> {
        let (pattern, precision) = s.rsplit_once('=').ok_or_else(|| {
            QuantError::Plan(format!("rule `{s}` is not of the form pattern=precision"))
        })?;
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(QuantError::Plan(format!("rule `{s}` has an empty pattern")));
        }
        Ok(Self {
            pattern: pattern.to_string(),
            precision: precision.parse()?,
            optional: false,
        })
    }
}

/// A per-layer precision plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecisionPlan {
    /// Precision of layers no rule matches.
    #[serde(default = "default_precision")]
    pub default: Precision,
    /// Rules in order; the last match wins.
    #[serde(default)]
    pub rules: Vec<PlanRule>,
}

fn default_precision() -> Precision {
    Precision::Int8
}

impl Default for PrecisionPlan {
    fn default() -> Self {
        let attention = |pattern: &str| PlanRule {
            pattern: pattern.into(),
            precision: Precision::Fp16,
            optional: true,
        };
        Self {
            default: Precision::Int8,
            rules: vec![attention("*attention*"), attention("*attn*")],
        }
    }
}

impl PrecisionPlan {
    /// Parse a plan from JSON (`{"default": "int8", "rules": [{"pattern": …, "precision": …}]}`).
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| QuantError::Plan(format!("JSON: {e}")))
    }
    /// Parse a plan from TOML (`default = "int8"` and `[[rules]]` tables).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| QuantError::Plan(format!("TOML: {e}")))
    }
    /// The plan as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| QuantError::Plan(format!("JSON: {e}")))
    }
    /// The plan as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| QuantError::Plan(format!("TOML: {e}")))
    }

    /// The precision of each of `layers`, in order; an error names any required rule that
    /// matches none of them.
    pub fn resolve<S: AsRef<str>>(&self, layers: &[S]) -> Result<Vec<Precision>> {
        let mut used = vec![false; self.rules.len()];
        let resolved = layers
            .iter()
            .map(|layer| {
                let name = layer.as_ref();
                let hit = self
                    .rules
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, r)| glob_match(&r.pattern, name));
                for (i, r) in self.rules.iter().enumerate() {
                    used[i] |= glob_match(&r.pattern, name);
                }
                hit.map_or(self.default, |(_, r)| r.precision)
            })
            .collect();
        if let Some((i, rule)) = self
            .rules
            .iter()
            .enumerate()
            .find(|(i, r)| !used[*i] && !r.optional)
        {
            return Err(QuantError::Plan(format!(
                "rule {} `{}={}` matches none of the {} layers",
                i + 1,
                rule.pattern,
                rule.precision,
                layers.len()
            )));
        }
        Ok(resolved)
    }
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Position of the last `*` and the name index it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: [&str; 6] = [
        "vfe.pfn.0",
        "backbone_2d.blocks.0.conv.0",
        "backbone_2d.blocks.2.conv.0",
        "backbone_2d.blocks.2.conv.1",
        "backbone_2d.deblocks.2.0",
        "dense_head.conv_cls",
    ];

    #[test]
    fn globs() {
        assert!(glob_match(
            "backbone_2d.blocks.2.*",
            "backbone_2d.blocks.2.conv.0"
        ));
        assert!(!glob_match(
            "backbone_2d.blocks.2.*",
            "backbone_2d.deblocks.2.0"
        ));
        assert!(glob_match("*.conv_?ls", "dense_head.conv_cls"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**x", "x"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn last_matching_rule_wins() {
        let plan = PrecisionPlan {
            default: Precision::Int8,
            rules: vec![
                "backbone_2d.blocks.2.*=fp16".parse().unwrap(),
                "*.conv.1=fp32".parse().unwrap(),
                "dense_head.* = fp32".parse().unwrap(),
            ],
        };
        use Precision::*;
        assert_eq!(
            plan.resolve(&LAYERS).unwrap(),
            vec![Int8, Int8, Fp16, Fp32, Int8, Fp32]
        );
    }

    #[test]
    fn unmatched_pattern_is_an_error_unless_optional() {
        let plan = PrecisionPlan {
            default: Precision::Int8,
            rules: vec!["backbone_2d.block.2.*=fp16".parse().unwrap()],
        };
        let err = plan.resolve(&LAYERS).unwrap_err().to_string();
        assert!(err.contains("backbone_2d.block.2.*"), "{err}");
        // The default plan's attention rules are optional: a model without attention is fine.
        let default = PrecisionPlan::default();
        assert_eq!(default.resolve(&LAYERS).unwrap(), vec![Precision::Int8; 6]);
        assert_eq!(
            default.resolve(&["bev.self_attn.qkv", "head"]).unwrap(),
            vec![Precision::Fp16, Precision::Int8]
        );
    }

    #[test]
    fn json_and_toml_round_trip() {
        let json = r#"{"default": "fp32", "rules": [
            {"pattern": "backbone_2d.blocks.2.*", "precision": "fp16"},
            {"pattern": "*attn*", "precision": "fp16", "optional": true}]}"#;
        let plan = PrecisionPlan::from_json(json).unwrap();
        assert_eq!(plan.default, Precision::Fp32);
        assert_eq!(plan.rules.len(), 2);
        assert!(plan.rules[1].optional && !plan.rules[0].optional);
        assert_eq!(
            PrecisionPlan::from_json(&plan.to_json().unwrap()).unwrap(),
            plan
        );
        let toml_text =
            "default = \"int8\"\n[[rules]]\npattern = \"dense_head.*\"\nprecision = \"fp32\"\n";
        let t = PrecisionPlan::from_toml(toml_text).unwrap();
        assert_eq!(t.rules[0].precision, Precision::Fp32);
        assert_eq!(PrecisionPlan::from_toml(&t.to_toml().unwrap()).unwrap(), t);
        assert_eq!(
            PrecisionPlan::from_json("{}").unwrap().default,
            Precision::Int8
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!("nopattern".parse::<PlanRule>().is_err());
        assert!("=fp16".parse::<PlanRule>().is_err());
        assert!("a.*=int4".parse::<PlanRule>().is_err());
        let err = PrecisionPlan::from_json("{\"default\": \"bf16\"}").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(PrecisionPlan::from_toml("default = 3").is_err());
    }
}
