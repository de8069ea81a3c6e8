"""What patients read: campaigns and their versions, the clinical content, and rendering.

Campaign directories, specs and the editor (drafts, publish, diff, the checks before saving and
publishing) on one side; compiling a published version and rendering it in the sandbox (Jinja →
MJML → HTML + text) on the other. The send path uses only the rendering side.
"""
