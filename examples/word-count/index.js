// Counts the words of a text that a client marked with cloud.CDN(): the
// field arrives as the URL of a temporary object, which the function fetches.
exports.main = async (event) => {
  const answer = await fetch(event.text);
  if (!answer.ok) throw new Error(`cannot fetch the text: HTTP ${answer.status}`);
  const text = await answer.text();
  return { words: text.split(/\s+/).filter(Boolean).length };
};
