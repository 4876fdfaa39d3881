//! Which attributes a search returns: the request's list resolved once against the served
//! schema, and each hit's DN and values borrowed from the snapshot.

use crate::directory::schema::{resolve, Attr, Resolved, OBJECT_CLASSES, SERVED};
use crate::directory::{Hit, Packed, Snapshot};

/// The served attributes a search returns, resolved once per search.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Indexes into [`SERVED`], in its order.
    pub(crate) served: Vec<usize>,
    /// The request's list, for the base container's RDN attribute.
    pub(crate) attrs: Vec<String>,
    pub(crate) types_only: bool,
}

impl Selection {
    pub(crate) fn new(attrs: Vec<String>, types_only: bool) -> Self {
        let all = attrs.is_empty() || attrs.iter().any(|a| a == "*");
        let served = SERVED
            .iter()
            .enumerate()
            .filter(|(_, (name, attr))| {
                all || attrs.iter().any(|a| {
                    a.eq_ignore_ascii_case(name)
                        || (!SERVED.iter().any(|(n, _)| n.eq_ignore_ascii_case(a))
                            && resolve(a) == Resolved::Served(*attr))
                })
            })
            .map(|(i, _)| i)
            .collect();
        Selection {
            served,
            attrs,
            types_only,
        }
    }
}

/// The values of one attribute, borrowed from the snapshot.
pub(crate) enum Values<'a> {
    One(&'a str),
    Packed(Packed<'a>, Attr),
    Fixed(&'a [&'static str]),
}

impl Values<'_> {
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str)) {
        match self {
            Values::One(v) => f(v),
            Values::Packed(p, attr) => p.values(*attr).for_each(f),
            Values::Fixed(values) => values.iter().for_each(|v| f(v)),
        }
    }
}

/// The DN and the selected, non-empty attributes of a hit.
pub(crate) fn attributes<'a>(
    snapshot: &'a Snapshot,
    hit: Hit,
    selection: &Selection,
) -> (&'a str, Vec<(&'a str, Values<'a>)>) {
    match hit {
        Hit::Container => {
            let c = snapshot.container();
            let mut attributes = Vec::new();
            if selection.served.first() == Some(&0) {
                // SERVED[0] is objectClass
                attributes.push(("objectClass", Values::Fixed(&c.object_classes)));
            }
            let a = &selection.attrs;
            if a.is_empty()
                || a.iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(&c.rdn.0))
            {
                attributes.push((c.rdn.0.as_str(), Values::One(&c.rdn.1)));
            }
            (&c.dn, attributes)
        }
        Hit::Entry(id) => {
            let e = snapshot.packed(id);
            let attributes = selection
                .served
                .iter()
                .filter_map(|i| {
                    let (name, attr) = SERVED[*i];
                    let values = match attr {
                        Attr::ObjectClass => Values::Fixed(&OBJECT_CLASSES),
                        attr => {
                            e.ber_values(attr)?;
                            Values::Packed(e, attr)
                        }
                    };
                    Some((name, values))
                })
                .collect();
            (e.dn(), attributes)
        }
    }
}
