// server.js - node for the zoo: an http server on 127.0.0.1:PORT (argv[2])
// with a table of 100000 entries built before "ready";
//   GET /K  ->  "answer K 23K 100000"
const http = require('http');
const h = new Map();
for (let i = 0; i < 100000; i++) h.set(i, 23 * i);
http.createServer((req, res) => {
	const k = parseInt(req.url.slice(1), 10);
	res.end(`answer ${k} ${h.get(k)} ${h.size}\n`);
}).listen(parseInt(process.argv[2], 10), '127.0.0.1', () => console.log('ready'));
