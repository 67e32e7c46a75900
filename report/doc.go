// Package report renders plans and catalogues for people and for other
// programs: a compact text table, Graphviz dot and Mermaid diagrams of
// each class's stack with its guarantees, and `rime explain`'s proof in
// plain words. Rendering is pure: the same plan gives the same bytes.
package report
