// For the async phase's enqueue measurement: takes ten seconds and runs one at a time
// (config.json's asyncConfig), so that the worker barely drains the queue while it is filled.
exports.main = () => new Promise((done) => setTimeout(done, 10000));
