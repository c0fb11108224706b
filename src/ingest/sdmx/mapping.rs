//! `[sdmx]` of `config/feeds.toml`: which dataflows the service reads and how their dimensions
//! name an indicator, a unit and a period of the catalogue.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::domain::Code;

/// Every dataflow the SDMX formats accept, in the order they are matched.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "MappingToml")]
pub struct SdmxMapping {
    dataflows: Vec<Dataflow>,
}

impl SdmxMapping {
    /// The first configured dataflow whose pattern matches `reference`, with its position.
    pub fn dataflow(&self, reference: &StructureRef) -> Option<(usize, &Dataflow)> {
        self.dataflows
            .iter()
            .enumerate()
            .find(|(_, dataflow)| dataflow.structure.matches(reference))
    }

    pub fn dataflows(&self) -> &[Dataflow] {
        &self.dataflows
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingToml {
    #[serde(default)]
    dataflow: Vec<Dataflow>,
}

impl TryFrom<MappingToml> for SdmxMapping {
    type Error = String;

    fn try_from(toml: MappingToml) -> Result<Self, String> {
        for (index, dataflow) in toml.dataflow.iter().enumerate() {
            let earlier = &toml.dataflow[..index];
            if let Some(first) = earlier
                .iter()
                .position(|d| d.structure == dataflow.structure)
            {
                return Err(format!(
                    "dataflow[{index}] repeats the structure `{}` of dataflow[{first}]",
                    dataflow.structure
                ));
            }
        }
        Ok(Self {
            dataflows: toml.dataflow,
        })
    }
}

/// Where a dataflow's observations take their unit from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitSource {
    /// A dimension such as `REF_AREA`, its codes translated by `unit_codes`.
    Dimension(String),
    /// The same catalogue unit for every observation, for dataflows without an area dimension.
    Fixed(Code),
}

/// One `[[sdmx.dataflow]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "DataflowToml")]
pub struct Dataflow {
    pub structure: StructurePattern,
    /// The dimension whose code names the indicator.
    pub indicator_dimension: String,
    pub unit: UnitSource,
    /// The time dimension, `TIME_PERIOD` unless configured.
    pub time_dimension: String,
    /// The measure holding the value, `OBS_VALUE` unless configured.
    pub measure: String,
    /// An attribute (such as `OBS_STATUS`) whose code becomes the revision label.
    pub revision_attribute: Option<String>,
    /// An attribute whose value (an RFC 3339 instant) says when the observation became known;
    /// an SDMX-JSON message's `meta.prepared` stands in for observations without one.
    pub reported_at_attribute: Option<String>,
    indicator_codes: BTreeMap<String, Code>,
    unit_codes: BTreeMap<String, Code>,
    revision_labels: BTreeMap<String, String>,
}

impl Dataflow {
    /// The catalogue indicator an SDMX code stands for; codes without an entry are taken as
    /// catalogue codes already.
    pub fn indicator(&self, sdmx_code: &str) -> String {
        translate(&self.indicator_codes, sdmx_code)
    }

    /// The catalogue unit an SDMX code of the unit dimension stands for.
    pub fn unit(&self, sdmx_code: &str) -> String {
        translate(&self.unit_codes, sdmx_code)
    }

    /// The revision label of an attribute code: its configured label, or the code itself.
    pub fn revision_label(&self, code: &str) -> String {
        self.revision_labels
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_owned())
    }

    /// The catalogue indicators and units this dataflow's code lists translate to (a fixed unit
    /// included), for checking them against the catalogue.
    pub fn mapped_codes(&self) -> (Vec<&Code>, Vec<&Code>) {
        let mut units: Vec<&Code> = self.unit_codes.values().collect();
        if let UnitSource::Fixed(unit) = &self.unit {
            units.push(unit);
        }
        (self.indicator_codes.values().collect(), units)
    }

    /// The dimension that names the unit, if the unit is not fixed.
    pub fn unit_dimension(&self) -> Option<&str> {
        unit_dimension_of(&self.unit)
    }
}

fn translate(codes: &BTreeMap<String, Code>, sdmx_code: &str) -> String {
    codes
        .get(sdmx_code)
        .map_or_else(|| sdmx_code.to_owned(), |code| code.to_string())
}

fn time_period() -> String {
    "TIME_PERIOD".to_owned()
}

fn obs_value() -> String {
    "OBS_VALUE".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataflowToml {
    structure: String,
    indicator_dimension: String,
    unit_dimension: Option<String>,
    unit: Option<String>,
    #[serde(default = "time_period")]
    time_dimension: String,
    #[serde(default = "obs_value")]
    measure: String,
    revision_attribute: Option<String>,
    reported_at_attribute: Option<String>,
    #[serde(default)]
    indicator_codes: BTreeMap<String, String>,
    #[serde(default)]
    unit_codes: BTreeMap<String, String>,
    #[serde(default)]
    revision_labels: BTreeMap<String, String>,
}

fn component_id(raw: &str, key: &str) -> Result<String, String> {
    if is_sdmx_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "{key} = `{raw}` is not an SDMX component id (letters, digits, _, @, $, -)"
        ))
    }
}

fn catalogue_codes(
    raw: BTreeMap<String, String>,
    key: &str,
) -> Result<BTreeMap<String, Code>, String> {
    raw.into_iter()
        .map(|(sdmx_code, code)| {
            Code::parse(&code)
                .map(|code| (sdmx_code.clone(), code))
                .map_err(|e| format!("{key}.\"{sdmx_code}\": {e}"))
        })
        .collect()
}

impl TryFrom<DataflowToml> for Dataflow {
    type Error = String;

    fn try_from(toml: DataflowToml) -> Result<Self, String> {
        let structure = StructurePattern::parse(&toml.structure)?;
        let unit = match (toml.unit_dimension, toml.unit) {
            (Some(dimension), None) => {
                UnitSource::Dimension(component_id(&dimension, "unit_dimension")?)
            }
            (None, Some(unit)) => {
                UnitSource::Fixed(Code::parse(&unit).map_err(|e| format!("unit: {e}"))?)
            }
            (Some(_), Some(_)) => {
                return Err("give either `unit_dimension` or a fixed `unit`, not both".into())
            }
            (None, None) => {
                return Err(
                    "give `unit_dimension` (such as REF_AREA) or a fixed catalogue `unit`".into(),
                )
            }
        };
        let indicator_dimension = component_id(&toml.indicator_dimension, "indicator_dimension")?;
        let time_dimension = component_id(&toml.time_dimension, "time_dimension")?;
        let dimensions = [
            Some(indicator_dimension.as_str()),
            unit_dimension_of(&unit),
            Some(time_dimension.as_str()),
        ];
        let named: Vec<&str> = dimensions.into_iter().flatten().collect();
        if named
            .iter()
            .enumerate()
            .any(|(i, id)| named[..i].contains(id))
        {
            return Err(
                "indicator_dimension, unit_dimension and time_dimension must be different".into(),
            );
        }
        if !toml.unit_codes.is_empty() && matches!(unit, UnitSource::Fixed(_)) {
            return Err("`unit_codes` needs a `unit_dimension` to translate".into());
        }
        let revision_attribute = toml
            .revision_attribute
            .map(|id| component_id(&id, "revision_attribute"))
            .transpose()?;
        let reported_at_attribute = toml
            .reported_at_attribute
            .map(|id| component_id(&id, "reported_at_attribute"))
            .transpose()?;
        if reported_at_attribute.is_some() && reported_at_attribute == revision_attribute {
            return Err("revision_attribute and reported_at_attribute must be different".into());
        }
        if !toml.revision_labels.is_empty() && revision_attribute.is_none() {
            return Err("`revision_labels` needs a `revision_attribute` to read".into());
        }
        if let Some((code, _)) = toml
            .revision_labels
            .iter()
            .find(|(_, label)| label.trim().is_empty())
        {
            return Err(format!("revision_labels.\"{code}\" is empty"));
        }
        Ok(Self {
            structure,
            indicator_dimension,
            unit,
            time_dimension,
            measure: component_id(&toml.measure, "measure")?,
            revision_attribute,
            reported_at_attribute,
            indicator_codes: catalogue_codes(toml.indicator_codes, "indicator_codes")?,
            unit_codes: catalogue_codes(toml.unit_codes, "unit_codes")?,
            revision_labels: toml.revision_labels,
        })
    }
}

fn unit_dimension_of(unit: &UnitSource) -> Option<&str> {
    match unit {
        UnitSource::Dimension(id) => Some(id),
        UnitSource::Fixed(_) => None,
    }
}

/// SDMX identifiers: `[A-Za-z0-9_@$-]+`.
pub fn is_sdmx_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'$' | b'-'))
}

/// Agency ids may nest (`ECB.DISS`).
fn is_agency_id(raw: &str) -> bool {
    !raw.is_empty() && raw.split('.').all(is_sdmx_id)
}

fn is_version(raw: &str) -> bool {
    !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
}

/// A structure reference as messages carry it: `AGENCY:ID(VERSION)`, or `AGENCY:ID` for a
/// non-versioned artefact (SDMX 3.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureRef {
    pub agency: String,
    pub id: String,
    pub version: Option<String>,
}

impl StructureRef {
    /// Longest reference read; each row keeps its structure as its `source`.
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > Self::MAX_LEN {
            return Err(format!(
                "a structure reference is at most {} characters",
                Self::MAX_LEN
            ));
        }
        let syntax = || format!("`{raw}` is not a structure reference AGENCY:ID(VERSION)");
        let (agency, rest) = raw.split_once(':').ok_or_else(syntax)?;
        let (id, version) = match rest.split_once('(') {
            Some((id, version)) => {
                let version = version.strip_suffix(')').ok_or_else(syntax)?;
                if !is_version(version) {
                    return Err(syntax());
                }
                (id, Some(version.to_owned()))
            }
            None => (rest, None),
        };
        if !is_agency_id(agency) || !is_sdmx_id(id) {
            return Err(syntax());
        }
        Ok(Self {
            agency: agency.to_owned(),
            id: id.to_owned(),
            version,
        })
    }
}

impl fmt::Display for StructureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agency, self.id)?;
        match &self.version {
            Some(version) => write!(f, "({version})"),
            None => Ok(()),
        }
    }
}

/// Which versions of a structure an entry accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VersionPattern {
    /// `AGENCY:ID`: the non-versioned artefact only.
    Unversioned,
    /// `AGENCY:ID(1.0)`.
    Exact(String),
    /// `AGENCY:ID(1.*)`: any version that starts with `1.`.
    Prefix(String),
    /// `AGENCY:ID(*)`: any version, or none.
    Any,
}

/// `structure` of a dataflow entry: a reference whose version may be a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructurePattern {
    agency: String,
    id: String,
    version: VersionPattern,
}

impl StructurePattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (base, version) = if let Some(base) = raw.strip_suffix("(*)") {
            (base, VersionPattern::Any)
        } else if let Some((base, prefix)) = raw
            .strip_suffix(".*)")
            .and_then(|head| head.rsplit_once('('))
        {
            if !is_version(prefix) {
                return Err(format!("`{raw}`: the version before `.*` is not a version"));
            }
            (base, VersionPattern::Prefix(format!("{prefix}.")))
        } else {
            let reference = StructureRef::parse(raw).map_err(|e| {
                format!("structure: {e}; the version may be `*` (any) or end in `.*` (1.*)")
            })?;
            let version = reference
                .version
                .map_or(VersionPattern::Unversioned, VersionPattern::Exact);
            return Ok(Self {
                agency: reference.agency,
                id: reference.id,
                version,
            });
        };
        let reference = StructureRef::parse(base)
            .ok()
            .filter(|r| r.version.is_none())
            .ok_or_else(|| format!("structure: `{raw}` is not AGENCY:ID(VERSION)"))?;
        Ok(Self {
            agency: reference.agency,
            id: reference.id,
            version,
        })
    }

    pub fn matches(&self, reference: &StructureRef) -> bool {
        if self.agency != reference.agency || self.id != reference.id {
            return false;
        }
        match (&self.version, reference.version.as_deref()) {
            (VersionPattern::Any, _) => true,
            (VersionPattern::Unversioned, version) => version.is_none(),
            (VersionPattern::Exact(expected), Some(version)) => expected == version,
            (VersionPattern::Prefix(prefix), Some(version)) => version.starts_with(prefix.as_str()),
            (VersionPattern::Exact(_) | VersionPattern::Prefix(_), None) => false,
        }
    }
}

impl fmt::Display for StructurePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agency, self.id)?;
        match &self.version {
            VersionPattern::Unversioned => Ok(()),
            VersionPattern::Exact(version) => write!(f, "({version})"),
            VersionPattern::Prefix(prefix) => write!(f, "({prefix}*)"),
            VersionPattern::Any => f.write_str("(*)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(raw: &str) -> StructureRef {
        StructureRef::parse(raw).unwrap()
    }

    fn mapping(toml_text: &str) -> Result<SdmxMapping, String> {
        toml::from_str::<SdmxMapping>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn structure_references_parse_with_and_without_a_version() {
        let versioned = reference("ECB.DISS:BSI_PUB(1.0.0)");
        assert_eq!(versioned.agency, "ECB.DISS");
        assert_eq!(versioned.id, "BSI_PUB");
        assert_eq!(versioned.version.as_deref(), Some("1.0.0"));
        assert_eq!(reference("VN_HCMSO:DF_KTXH").version, None);
        let long = format!("A:B({})", "1".repeat(StructureRef::MAX_LEN));
        assert!(StructureRef::parse(&long).unwrap_err().contains("at most"));
        for bad in [
            "",
            "DF_KTXH",
            ":DF",
            "A:",
            "A:B(",
            "A:B()",
            "A:B(1.0",
            "A B:C(1.0)",
            "A:B(1.0)x",
        ] {
            assert!(StructureRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_wildcards_match_what_they_say() {
        let exact = StructurePattern::parse("VN_HCMSO:DF_KTXH(1.0)").unwrap();
        let minor = StructurePattern::parse("VN_HCMSO:DF_KTXH(1.*)").unwrap();
        let any = StructurePattern::parse("VN_HCMSO:DF_KTXH(*)").unwrap();
        let unversioned = StructurePattern::parse("VN_HCMSO:DF_KTXH").unwrap();
        let v10 = reference("VN_HCMSO:DF_KTXH(1.0)");
        let v12 = reference("VN_HCMSO:DF_KTXH(1.2.0)");
        let v20 = reference("VN_HCMSO:DF_KTXH(2.0)");
        let v11 = reference("VN_HCMSO:DF_KTXH(11.0)");
        let none = reference("VN_HCMSO:DF_KTXH");
        let other = reference("VN_HCMSO:DF_OTHER(1.0)");
        assert!(exact.matches(&v10) && !exact.matches(&v12) && !exact.matches(&none));
        assert!(minor.matches(&v10) && minor.matches(&v12));
        assert!(!minor.matches(&v20) && !minor.matches(&v11) && !minor.matches(&none));
        assert!(any.matches(&v10) && any.matches(&v20) && any.matches(&none));
        assert!(unversioned.matches(&none) && !unversioned.matches(&v10));
        assert!(!any.matches(&other));
        assert_eq!(minor.to_string(), "VN_HCMSO:DF_KTXH(1.*)");
    }

    #[test]
    fn a_dataflow_translates_codes_and_passes_unknown_ones_through() {
        let mapping = mapping(
            r#"
            [[dataflow]]
            structure = "VN_HCMSO:DF_KTXH(1.*)"
            indicator_dimension = "INDICATOR"
            unit_dimension = "REF_AREA"
            revision_attribute = "OBS_STATUS"
            indicator_codes = { CPI_YOY = "CPI_GROWTH" }
            unit_codes = { "VN-SG" = "HCM" }
            revision_labels = { P = "provisional" }
            "#,
        )
        .unwrap();
        let (_, dataflow) = mapping
            .dataflow(&reference("VN_HCMSO:DF_KTXH(1.0)"))
            .unwrap();
        assert_eq!(dataflow.indicator("CPI_YOY"), "CPI_GROWTH");
        assert_eq!(dataflow.indicator("RETAIL_SALES"), "RETAIL_SALES");
        assert_eq!(dataflow.unit("VN-SG"), "HCM");
        assert_eq!(dataflow.revision_label("P"), "provisional");
        assert_eq!(dataflow.revision_label("A"), "A");
        assert_eq!(dataflow.time_dimension, "TIME_PERIOD");
        assert_eq!(dataflow.measure, "OBS_VALUE");
        assert_eq!(dataflow.unit_dimension(), Some("REF_AREA"));
        assert!(mapping
            .dataflow(&reference("VN_HCMSO:DF_KTXH(2.0)"))
            .is_none());
    }

    #[test]
    fn inconsistent_entries_are_refused_at_load() {
        let base = "structure = \"A:DF(1.0)\"\nindicator_dimension = \"INDICATOR\"\n";
        let cases = [
            ("", "unit_dimension"),
            (
                "unit_dimension = \"REF_AREA\"\nunit = \"HCM\"\n",
                "not both",
            ),
            ("unit = \"hcm\"\n", "not a code"),
            (
                "unit = \"HCM\"\nunit_codes = { X = \"HCM\" }\n",
                "unit_codes",
            ),
            ("unit_dimension = \"INDICATOR\"\n", "different"),
            (
                "unit = \"HCM\"\nrevision_labels = { P = \"p\" }\n",
                "revision_attribute",
            ),
            (
                "unit = \"HCM\"\nindicator_codes = { X = \"cpi\" }\n",
                "indicator_codes.\"X\"",
            ),
            ("unit = \"HCM\"\nmeasure = \"OBS VALUE\"\n", "measure"),
            ("unit = \"HCM\"\ncolour = \"red\"\n", "unknown field"),
        ];
        for (extra, expected) in cases {
            let error = mapping(&format!("[[dataflow]]\n{base}{extra}")).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
        let twice =
            format!("[[dataflow]]\n{base}unit = \"HCM\"\n[[dataflow]]\n{base}unit = \"HCM\"\n");
        assert!(mapping(&twice).unwrap_err().contains("repeats"));
        assert!(mapping("[[dataflow]]\nstructure = \"A:DF(1.*x)\"\nindicator_dimension = \"I\"\nunit = \"HCM\"\n").is_err());
    }
}
