/* Cortex-M4 build of the sensor firmware: the same portable core as the host build, over the
 * bare-metal HAL. Sleeps (WFI) between SysTick ticks. */
#include "es_firmware.h"
#include "es_hal.h"
#include "hal_cortexm.h"

#ifndef ES_DEVICE_ID
#define ES_DEVICE_ID 0xE5E50001u
#endif

static es_fw fw;

int main(void)
{
    hal_cortexm_init(115200u);
    es_fw_start(&fw, 1u, ES_DEVICE_ID, hal_millis());
    uint32_t last = hal_millis();
    for (;;) {
        uint32_t now = hal_millis();
        if (now != last) {
            es_fw_poll(&fw, now);
            last = now;
        }
        hal_cortexm_service();
        __asm volatile("wfi"); /* until the next SysTick or UART interrupt */
    }
}
