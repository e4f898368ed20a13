//! The README's example mapping table is a table the gateway loads, and
//! means what the README says of it.

use hl7edge_protocol::normalize::coding_system::CodingSystem;
use hl7edge_protocol::normalize::mapping::MappingTable;

#[test]
fn the_readme_mapping_example_loads_and_maps_as_described() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```csv\n").expect("README has a csv block") + "```csv\n".len();
    let end = start + readme[start..].find("```").expect("the csv block ends");
    let table = MappingTable::parse(&readme[start..end]).unwrap();
    let glu = table.map_code("99LAB", "GLU").unwrap();
    assert_eq!(
        (glu.code.as_str(), glu.unit.as_deref()),
        ("2345-7", Some("mg/dL"))
    );
    assert_eq!(table.map_code("99OTHER", "K").unwrap().code, "2823-3");
    assert_eq!(table.map_unit("mgs/dl").unwrap().ucum, "mg/dL");
    assert_eq!(table.standard_system("99LABX"), Some(&CodingSystem::Loinc));
    assert_eq!(table.version().declared.as_deref(), Some("2026-03-lab-v4"));
}
