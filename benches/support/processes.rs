//! Rounds spread over several processes of the same bench, for benches whose figures
//! depend on where a process's memory landed.
//!
//! On this VM a row measured in one process can sit in one of two modes for the whole
//! run: tower's ConcurrencyLimit took 16 ns a request in one run of benches/layer_rounds.rs
//! and 31 ns in the next, same binary, same code, every round of the run alike (address
//! space layout is drawn per process, so loads that alias a recent store modulo 4 KiB
//! stall in one process and not in the next). Medians over the rounds of one process then
//! measure its layout, not the code. So the parent runs `PROCESSES` children of itself
//! one after the other (same arguments; an environment variable marks them), each timing a
//! few rounds of every row and printing them raw; the parent pools every child's rounds
//! and reports the medians over all of them.

use std::process::Command;

/// How many children the parent runs.
pub const PROCESSES: usize = 7;

const CHILD: &str = "PALISADE_BENCH_CHILD";
const MARK: &str = "round\t";

/// `true` in a child: time rounds and [`print_round`] them.
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// A child's report of one round of row `name`: palisade's and the peer's overhead.
pub fn print_round(name: &str, ours: f64, theirs: f64) {
    println!("{MARK}{name}\t{ours}\t{theirs}");
}

/// One row's rounds, pooled from every child.
#[derive(Debug, Default)]
pub struct Row {
    /// The row's name.
    pub name: String,
    /// Palisade's overhead per round, ns.
    pub ours: Vec<f64>,
    /// The peer's overhead per round, ns.
    pub theirs: Vec<f64>,
}

/// Runs the children and pools their rounds by row, in the order rows first appear.
/// A child that fails ends the bench with its output.
pub fn run_children() -> Vec<Row> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut rows: Vec<Row> = Vec::new();
    for _ in 0..PROCESSES {
        let out = Command::new(&exe)
            .args(std::env::args().skip(1))
            .env(CHILD, "1")
            .output()
            .expect("run a child of the bench");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a child of the bench failed: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines().filter_map(|l| l.strip_prefix(MARK)) {
            let mut parts = line.split('\t');
            let (Some(name), Some(ours), Some(theirs)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("a child's line is not `round name ours theirs`: {line}");
            };
            let (ours, theirs) = (
                ours.parse().expect("a child's figure"),
                theirs.parse().expect("a child's figure"),
            );
            let at = match rows.iter().position(|r| r.name == name) {
                Some(at) => at,
                None => {
                    rows.push(Row {
                        name: name.to_owned(),
                        ..Row::default()
                    });
                    rows.len() - 1
                }
            };
            rows[at].ours.push(ours);
            rows[at].theirs.push(theirs);
        }
    }
    rows
}
