// Feedback for the user in the polite live region under the header.

let timer = null;

// kind "error" stays until replaced; others fade after a few seconds. message: text or nodes.
export function notify(message, kind = "info") {
  const box = document.getElementById("notice");
  box.dataset.kind = kind;
  box.replaceChildren(...(Array.isArray(message) ? message : [message]));
  clearTimeout(timer);
  if (kind !== "error") timer = setTimeout(() => box.replaceChildren(), 8000);
}

// Run an action, reporting its error instead of throwing; returns its result or undefined.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    notify(`Failed: ${error.message}`, "error");
    return undefined;
  }
}
