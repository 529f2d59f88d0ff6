// SPDX-License-Identifier: Apache-2.0
#include "test_pki.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace sluice::k8stest {
namespace {

struct BioFree { void operator()(BIO* b) const { BIO_free_all(b); } };
struct KeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct CertFree { void operator()(X509* c) const { X509_free(c); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

std::string bioToString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string keyPem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr)) return {};
  return bioToString(b.get());
}

std::string certPem(X509* c) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(b.get(), c)) return {};
  return bioToString(b.get());
}

bool addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// issuer/issuerKey null: self-signed.
CertPtr makeCert(EVP_PKEY* key, const std::string& cn, const char* org, X509* issuer, EVP_PKEY* issuerKey,
                 long serial, bool ca, const char* san, const char* eku) {
  CertPtr cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (org) X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(org), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  bool ok = true;
  if (ca) {
    ok = ok && addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    ok = ok && addExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    ok = ok && addExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    ok = ok && addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && addExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    ok = ok && addExt(cert.get(), iss, NID_ext_key_usage, eku);
    ok = ok && addExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
    if (san) ok = ok && addExt(cert.get(), iss, NID_subject_alt_name, san);
  }
  if (!ok) return nullptr;
  if (!X509_sign(cert.get(), issuerKey ? issuerKey : key, EVP_sha256())) return nullptr;
  return cert;
}

}  // namespace

TestPki makeTestPki(const std::string& caName, const std::string& clientCommonName) {
  TestPki pki;
  KeyPtr caKey(EVP_EC_gen("P-256"));
  KeyPtr serverKey(EVP_EC_gen("P-256"));
  KeyPtr clientKey(EVP_EC_gen("P-256"));
  if (!caKey || !serverKey || !clientKey) return pki;
  CertPtr ca = makeCert(caKey.get(), caName, nullptr, nullptr, nullptr, 1, true, nullptr, nullptr);
  if (!ca) return pki;
  CertPtr server = makeCert(serverKey.get(), "kube-apiserver", nullptr, ca.get(), caKey.get(), 2, false,
                            "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc", "serverAuth");
  CertPtr client = makeCert(clientKey.get(), clientCommonName, "system:nodes", ca.get(), caKey.get(), 3, false,
                            nullptr, "clientAuth");
  if (!server || !client) return pki;
  pki.caCertPem = certPem(ca.get());
  pki.caKeyPem = keyPem(caKey.get());
  pki.serverCertPem = certPem(server.get());
  pki.serverKeyPem = keyPem(serverKey.get());
  pki.clientCertPem = certPem(client.get());
  pki.clientKeyPem = keyPem(clientKey.get());
  pki.clientCommonName = clientCommonName;
  return pki;
}

std::string base64Encode(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace sluice::k8stest
