//! A plan written out: the terminal's table, the Markdown of a figures
//! block in docs/, and the section of `capacity.html`.

use std::fmt::Write as _;

use crate::html::escape;
use crate::markdown::table;

use super::Plan;

impl Plan {
    pub fn table(&self) -> String {
        let mut out = format!(
            "Plan for {:.0} players{}\n",
            self.players,
            if self.extrapolated {
                " — EXTRAPOLATION: beyond twice the largest load measured"
            } else {
                ""
            }
        );
        for line in &self.lines {
            let _ = writeln!(
                out,
                "  {:<26} {:>18}   {}",
                line.what, line.value, line.assumption
            );
        }
        for c in &self.claims {
            let _ = writeln!(out, "  claim: {}", c.sentence());
        }
        out
    }

    /// The plan as Markdown, for a figures block in docs/.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "Plan for {} players{}:\n\n",
            crate::report::thousands(self.players),
            if self.extrapolated {
                " (an extrapolation: beyond twice the largest load measured)"
            } else {
                ""
            }
        );
        table(
            &mut md,
            &["figure", "value", "rests on"],
            self.lines
                .iter()
                .map(|l| [l.what.clone(), l.value.clone(), l.assumption.clone()]),
        );
        if !self.claims.is_empty() {
            table(
                &mut md,
                &[
                    "a team's claim",
                    "claimed players",
                    "the model's answer",
                    "claim ÷ model",
                ],
                self.claims.iter().map(|c| c.cells()),
            );
        }
        md
    }

    /// The plan as a section of a page.
    pub fn section(&self) -> String {
        let mut html = format!("<h2>Plan for {:.0} players</h2>", self.players);
        if self.extrapolated {
            html.push_str("<p class=\"verdict\"><b>Extrapolation</b>: the target is beyond twice the largest load measured.</p>");
        }
        html.push_str("<table><tr><th>Figure</th><th>Value</th><th>Rests on</th></tr>");
        for l in &self.lines {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&l.what),
                escape(&l.value),
                escape(&l.assumption)
            );
        }
        html.push_str("</table>");
        if !self.claims.is_empty() {
            html.push_str("<h3>The claims a team brings, against the model</h3><table><tr><th>Claim</th><th>Claimed players</th><th>The model's answer</th><th>Claim ÷ model</th></tr>");
            for c in &self.claims {
                let [text, claimed, model, ratio] = c.cells().map(|x| escape(&x));
                let _ = write!(
                    html,
                    "<tr><td>{text}</td><td class=\"n\">{claimed}</td><td class=\"n\">{model}</td><td class=\"n\">{ratio}</td></tr>"
                );
            }
            html.push_str("</table>");
        }
        html
    }
}
