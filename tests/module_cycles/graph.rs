//! The module graph: circles (strongly connected components), the folder rule, and an example
//! path through a circle for the message.

use super::*;

pub(super) fn under(module: &str, folder: &str) -> bool {
    module.starts_with(&format!("{folder}::"))
}

/// The graph without the arrows from files to their folder modules.
pub(super) fn without_folder_arrows(full: &Graph) -> Graph {
    let mut within = full.clone();
    for (module, arrows) in within.iter_mut() {
        arrows.retain(|target, _| !under(module, target));
    }
    within
}

/// The circles to report: each strongly connected component that leaves a folder, and within a
/// folder the components that remain without the arrows from files to their folder modules.
pub(super) fn reported_circles(full: &Graph) -> Vec<Vec<String>> {
    let inner = circles(&without_folder_arrows(full));
    let mut out = Vec::new();
    for comp in circles(full) {
        let one_folder = comp
            .iter()
            .any(|root| comp.iter().all(|m| m == root || under(m, root)));
        if one_folder {
            out.extend(
                inner
                    .iter()
                    .filter(|c| c.iter().all(|m| comp.contains(m)))
                    .cloned(),
            );
        } else {
            out.push(comp);
        }
    }
    out.sort();
    out
}

/// The strongly connected components with more than one module, each sorted.
pub(super) fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iteratively small enough to be recursive here.
    struct T<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flat_map(|a| a.keys()) {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

/// One circle through `start` in the component, each arrow with where it comes from.
pub(super) fn example_path(graph: &Graph, comp: &[String], start: &str) -> Option<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    // Shortest way back to `start`, breadth first.
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut end = None;
    while let Some(v) = queue.pop_front() {
        for w in graph[v].keys().map(String::as_str) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                end = Some(v);
                break;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
        if end.is_some() {
            break;
        }
    }
    let mut back = Vec::new();
    let mut v = end?;
    while v != start {
        back.push(v);
        v = prev[v];
    }
    let chain: Vec<&str> = std::iter::once(start)
        .chain(back.into_iter().rev())
        .chain(std::iter::once(start))
        .collect();
    Some(
        chain
            .windows(2)
            .map(|w| format!("{} → {} ({})", w[0], w[1], graph[w[0]][w[1]]))
            .collect::<Vec<_>>()
            .join(", "),
    )
}
