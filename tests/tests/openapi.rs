//! Every response of a whole conformance run against the server (in memory) is inside
//! docs/openapi.json: path, method, status, content type and JSON body.

use crypt_conformance::{checks, launch, openapi, record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conformance_response_is_in_the_openapi_document() {
    record::start();
    for (name, check) in checks::ALL {
        println!("running {name}");
        check(launch::server_memory).await;
    }
    let exchanges = record::take();
    assert!(exchanges.len() > 300, "only {} exchanges were recorded", exchanges.len());
    let mut doc = openapi::Document::load();
    let outside: Vec<String> = exchanges.iter().filter_map(|ex| doc.check(ex).err()).collect();
    assert!(outside.is_empty(), "{} responses are outside the document:\n{}", outside.len(), outside.join("\n"));
}
