// Refresh the step preview without leaving the page; without JavaScript the button posts the form.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("step-form");
  const button = document.getElementById("preview-button");
  if (!form || !button) return;
  const problems = document.getElementById("problems");
  const show = (items) => {
    problems.replaceChildren();
    problems.className = items.length ? "alert" : "";
    if (!items.length) return;
    const list = document.createElement("ul");
    for (const item of items) {
      const li = document.createElement("li");
      li.className = "problem";
      if (item.where) {
        const place = document.createElement("strong");
        place.textContent = item.where + (item.line ? " line " + item.line : "") + ": ";
        li.append(place);
      }
      li.append(document.createTextNode(item.message));
      list.append(li);
    }
    problems.append(list);
  };
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    data.delete("action");
    button.disabled = true;
    try {
      const answer = await fetch(form.dataset.preview, { method: "POST", body: data });
      if (!answer.ok) { form.requestSubmit(button); return; }
      const result = await answer.json();
      show(result.problems);
      document.querySelector(".preview").classList.toggle("stale", !result.preview);
      if (result.preview) {
        document.getElementById("preview-subject").textContent = result.preview.subject;
        document.getElementById("frame-desktop").srcdoc = result.preview.html;
        document.getElementById("frame-phone").srcdoc = result.preview.html;
        document.getElementById("preview-text").textContent = result.preview.text;
      }
    } finally {
      button.disabled = false;
    }
  });
});
