-- wrk script: POST to the invoke API the integration-request event that a route builds for
-- POST {"x":1,"y":2} from wrk (bench/run.sh's access phase): the route's event without the route.
wrk.method = "POST"
wrk.body   = '{"path":"/","httpMethod":"POST","headers":{"host":"127.0.0.1:8080","content-type":"application/json","content-length":"13"},"queryStringParameters":{},"multiValueQueryStringParameters":{},"requestContext":{"requestId":"01a2482c-7db0-73e2-b1f8-6fd46f8b2190","envId":"default","appId":"","uin":"","httpMethod":"POST","path":"/sum","routePath":"/sum"},"body":"{\\"x\\":1,\\"y\\":2}","isBase64Encoded":false}'
wrk.headers["Content-Type"] = "application/json"
