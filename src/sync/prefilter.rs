//! Pre-filter: which upstream entries belong in the phone book at all.
//!
//! The search filter of a connector narrows what the upstream sends; the pre-filter decides
//! on what arrived, with regular expressions an LDAP filter cannot express (group DNs by
//! pattern, `employeeType` not `disabled`, …). Every rule must hold; `any` groups rules of
//! which one is enough.

use regex::Regex;

use crate::sync::raw::RawEntry;

/// One rule of `[[connector.prefilter]]`, compiled when the configuration is loaded.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Some value of the attribute matches.
    Matches { attribute: String, regex: Regex },
    /// No value of the attribute matches (an absent attribute passes).
    NotMatches { attribute: String, regex: Regex },
    /// The attribute has (`true`) or lacks (`false`) a non-empty value.
    Present { attribute: String, present: bool },
    /// At least one of the rules holds.
    Any(Vec<Rule>),
}

impl Rule {
    pub fn holds(&self, entry: &RawEntry) -> bool {
        let values = |attribute: &str| entry.values(attribute).unwrap_or(&[]);
        match self {
            Rule::Matches { attribute, regex } => {
                values(attribute).iter().any(|v| regex.is_match(v))
            }
            Rule::NotMatches { attribute, regex } => {
                !values(attribute).iter().any(|v| regex.is_match(v))
            }
            Rule::Present { attribute, present } => {
                values(attribute).iter().any(|v| !v.is_empty()) == *present
            }
            Rule::Any(rules) => rules.iter().any(|r| r.holds(entry)),
        }
    }

    /// Why the rule does not hold for an entry, as a person reads it.
    pub fn failure(&self) -> String {
        match self {
            Rule::Matches { attribute, regex } => {
                format!("no {attribute} value matches {}", regex.as_str())
            }
            Rule::NotMatches { attribute, regex } => {
                format!("{attribute} matches {} (not_matches)", regex.as_str())
            }
            Rule::Present {
                attribute,
                present: true,
            } => format!("no {attribute}"),
            Rule::Present {
                attribute,
                present: false,
            } => format!("has {attribute} (present = false)"),
            Rule::Any(rules) => format!(
                "none of the any rules holds ({})",
                rules
                    .iter()
                    .map(Rule::failure)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// Every attribute the rule reads (lower-cased), so the source can request them by name:
    /// operational attributes such as `memberOf` are only sent when asked for.
    pub fn attributes(&self) -> Vec<&str> {
        match self {
            Rule::Matches { attribute, .. }
            | Rule::NotMatches { attribute, .. }
            | Rule::Present { attribute, .. } => vec![attribute.as_str()],
            Rule::Any(rules) => rules.iter().flat_map(Rule::attributes).collect(),
        }
    }
}

/// All rules of a connector: an entry passes when every rule holds.
#[derive(Debug, Clone, Default)]
pub struct Prefilter {
    pub rules: Vec<Rule>,
}

impl Prefilter {
    pub fn admits(&self, entry: &RawEntry) -> bool {
        self.rules.iter().all(|r| r.holds(entry))
    }

    /// The first rule an entry fails, as `prefilter[i]: why`; `None` when it passes.
    pub fn rejection(&self, entry: &RawEntry) -> Option<String> {
        let (i, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| !r.holds(entry))?;
        Some(format!("prefilter[{i}]: {}", rule.failure()))
    }

    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(Rule::attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[(&str, &str)]) -> RawEntry {
        let mut e = RawEntry::new("uid=a,dc=x");
        for (n, v) in attrs {
            e.push(n, v.to_string());
        }
        e
    }

    fn member_of() -> Rule {
        Rule::Matches {
            attribute: "memberof".into(),
            regex: Regex::new("(?i)^cn=company-phonebook,").unwrap(),
        }
    }

    #[test]
    fn matches_any_value_of_a_multi_valued_attribute() {
        let e = entry(&[
            ("memberOf", "cn=editors,ou=groups,dc=x"),
            ("memberOf", "CN=Company-Phonebook,ou=groups,dc=x"),
        ]);
        assert!(member_of().holds(&e));
        assert!(!member_of().holds(&entry(&[("memberOf", "cn=editors,dc=x")])));
        assert!(!member_of().holds(&entry(&[])));
    }

    #[test]
    fn not_matches_passes_absent_attributes_and_rejects_any_match() {
        let rule = Rule::NotMatches {
            attribute: "employeetype".into(),
            regex: Regex::new("^disabled$").unwrap(),
        };
        assert!(rule.holds(&entry(&[])));
        assert!(rule.holds(&entry(&[("employeeType", "employee")])));
        assert!(!rule.holds(&entry(&[("employeeType", "disabled")])));
    }

    #[test]
    fn present_checks_for_non_empty_values() {
        let has = Rule::Present {
            attribute: "telephonenumber".into(),
            present: true,
        };
        let lacks = Rule::Present {
            attribute: "telephonenumber".into(),
            present: false,
        };
        let with = entry(&[("telephoneNumber", "089 1")]);
        assert!(has.holds(&with) && !lacks.holds(&with));
        assert!(!has.holds(&entry(&[])) && lacks.holds(&entry(&[])));
    }

    #[test]
    fn rules_are_anded_and_any_groups_are_ored() {
        let filter = Prefilter {
            rules: vec![
                member_of(),
                Rule::Any(vec![
                    Rule::Present {
                        attribute: "telephonenumber".into(),
                        present: true,
                    },
                    Rule::Present {
                        attribute: "mobile".into(),
                        present: true,
                    },
                ]),
            ],
        };
        let member = ("memberOf", "cn=company-phonebook,ou=groups,dc=x");
        assert!(filter.admits(&entry(&[member, ("mobile", "0170 1")])));
        assert!(!filter.admits(&entry(&[member])));
        assert!(!filter.admits(&entry(&[("mobile", "0170 1")])));
        let mut attrs: Vec<_> = filter.attributes().collect();
        attrs.sort();
        assert_eq!(attrs, ["memberof", "mobile", "telephonenumber"]);
        assert!(Prefilter::default().admits(&entry(&[])));
    }
}
