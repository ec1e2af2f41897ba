//! The neutral run-report model and its renderers (HTML, Markdown, JUnit). Built out by its own issue.
