#define SN_LOG_MOD "digest"
#include "digest.h"

#include <openssl/evp.h>
#include <pthread.h>

static const EVP_MD *md5_fetched, *sha256_fetched;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_all(void)
{
    md5_fetched = EVP_MD_fetch(NULL, "MD5", NULL);
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *sn_digest_md5(void)
{
    pthread_once(&fetch_once, fetch_all);
    return md5_fetched ? md5_fetched : EVP_md5(); /* fetch failed: the slow way */
}

const EVP_MD *sn_digest_sha256(void)
{
    pthread_once(&fetch_once, fetch_all);
    return sha256_fetched ? sha256_fetched : EVP_sha256();
}
