const express = require('express');
const app = express();

app.get('/sse', (req, res) => {
// 1. 设置 SSE 必需的响应头
res.writeHead(200, {
'Content-Type': 'text/event-stream',
'Cache-Control': 'no-cache',
'Connection': 'keep-alive'
});

// 2. 发送一个初始注释(可选,用于避免某些代理超时)
res.write(': keep-alive\n\n');

// 3. 定时发送事件
const intervalId = setInterval(() => {
const data = { time: new Date().toISOString() };
// SSE 格式:data: <内容>\n\n
res.write(`data: ${JSON.stringify(data)}\n\n`);
}, 1000);

// 4. 客户端关闭连接时清理定时器
req.on('close', () => {
clearInterval(intervalId);
res.end();
});
});

app.listen(9000);
